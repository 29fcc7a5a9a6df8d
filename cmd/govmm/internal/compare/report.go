package compare

import (
	"math"
	"time"
)

// Report is the outcome of a comparison: the raw samples, so that the
// summaries can be recomputed, and the notes that explain gaps.
type Report struct {
	Bundle   string    `json:"bundle"`
	Runtimes []string  `json:"runtimes"`
	Baseline string    `json:"baseline"` // the runtime ratios are to
	Runs     int       `json:"runs"`
	Started  time.Time `json:"started"`
	Rows     []Row     `json:"rows"`
	Notes    []string  `json:"notes,omitempty"`
}

// Row is one measure's samples per runtime (NaN: a failed run, or a
// measure that does not apply, stored as null in JSON).
type Row struct {
	Measure
	Samples map[string][]Sample `json:"samples"`
}

// Sample is a float64 that survives JSON as null when it is NaN.
type Sample float64

func (s Sample) MarshalJSON() ([]byte, error) {
	f := float64(s)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return []byte(formatFloat(f)), nil
}

func (s *Sample) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = Sample(math.NaN())
		return nil
	}
	f, err := parseFloat(string(b))
	*s = Sample(f)
	return err
}

func floats(ss []Sample) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = float64(s)
	}
	return out
}

// Summary of one cell.
func (r Row) Summary(runtime string) (Summary, bool) {
	return Summarize(floats(r.Samples[runtime]))
}

// Ratio of a runtime's median to the baseline's.
func (r Row) Ratio(runtime, baseline string) (float64, bool) {
	a, ok1 := r.Summary(runtime)
	b, ok2 := r.Summary(baseline)
	if !ok1 || !ok2 {
		return 0, false
	}
	return Ratio(a.Median, b.Median)
}

// Empty: no runtime has a value (e.g. the VMM overhead when only containers ran).
func (r Row) Empty() bool {
	for rt := range r.Samples {
		if _, ok := r.Summary(rt); ok {
			return false
		}
	}
	return true
}
