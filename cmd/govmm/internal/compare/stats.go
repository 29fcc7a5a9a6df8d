package compare

import (
	"math"
	"sort"
)

// Summary is what the table shows of one measure under one runtime.
type Summary struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Summarize reduces samples to their median and range. The median, not the
// mean: one slow start (a cold page cache, a scheduler hiccup) should not
// move the headline. NaN samples (a failed run) are left out.
func Summarize(samples []float64) (Summary, bool) {
	var xs []float64
	for _, x := range samples {
		if !math.IsNaN(x) {
			xs = append(xs, x)
		}
	}
	if len(xs) == 0 {
		return Summary{}, false
	}
	sort.Float64s(xs)
	n := len(xs)
	med := xs[n/2]
	if n%2 == 0 {
		med = (xs[n/2-1] + xs[n/2]) / 2
	}
	return Summary{N: n, Median: med, Min: xs[0], Max: xs[n-1]}, true
}

// Ratio is a/b, or false when either side is missing or not positive: a
// memory drop lost in the host's noise can come out below zero, and a
// ratio of such figures means nothing.
func Ratio(a, b float64) (float64, bool) {
	if b <= 0 || a < 0 || math.IsNaN(a) || math.IsNaN(b) {
		return 0, false
	}
	return a / b, true
}
