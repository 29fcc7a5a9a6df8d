package compare

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// bar is one runtime's bar of one measure, normalised to the baseline.
type bar struct {
	x, y, lo, hi float64
}

// normalised returns, per runtime, the bars of every measure the baseline
// has a positive median for, and the measures' names: dividing by the
// baseline puts milliseconds and MiB on one axis.
func normalised(rep *Report) (map[string][]bar, []string) {
	bars := map[string][]bar{}
	var names []string
	width := 0.8 / float64(len(rep.Runtimes))
	for _, row := range rep.Rows {
		base, ok := row.Summary(rep.Baseline)
		if !ok || base.Median <= 0 {
			continue
		}
		x := float64(len(names))
		names = append(names, row.Key)
		for j, rt := range rep.Runtimes {
			s, ok := row.Summary(rt)
			if !ok || s.Median < 0 {
				continue
			}
			bx := x - 0.4 + width*(float64(j)+0.5)
			bars[rt] = append(bars[rt], bar{bx, s.Median / base.Median, s.Min / base.Median, s.Max / base.Median})
		}
	}
	return bars, names
}

// errs adapts bars to plotter's error-bar interfaces (the errors are
// distances from the median).
type errs []bar

func (e errs) Len() int                        { return len(e) }
func (e errs) XY(i int) (float64, float64)     { return e[i].x, e[i].y }
func (e errs) YError(i int) (float64, float64) { return e[i].y - e[i].lo, e[i].hi - e[i].y }

// Plot draws each measure's medians per runtime as grouped bars with min–max
// error bars, normalised to the baseline = 1. The scale is logarithmic
// when a ratio passes 10 (a VM's start against a container's).
func Plot(rep *Report) (*plot.Plot, error) {
	bars, names := normalised(rep)
	if len(names) == 0 {
		return nil, fmt.Errorf("nothing to plot: no measure has a positive %s median", rep.Baseline)
	}
	p := plot.New()
	p.Title.Text = "what a microVM costs: median (min–max), " + rep.Baseline + " = 1"
	p.Y.Label.Text = "× " + rep.Baseline
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = math.Pi / 4
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.Legend.Top = true

	lo, hi := math.Inf(1), 0.0
	for _, bs := range bars {
		for _, b := range bs {
			lo, hi = math.Min(lo, math.Max(b.lo, 1e-3)), math.Max(hi, b.hi)
		}
	}
	floor := 0.0
	if hi/lo > 10 || hi > 10 {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		floor = math.Pow(10, math.Floor(math.Log10(lo)))
	}
	p.Y.Min = floor
	if floor > 0 {
		// A log axis takes no value at or below zero: a bar's low end
		// can be (a host-wide MemAvailable drop below zero in one run).
		for _, bs := range bars {
			for i := range bs {
				bs[i].y = math.Max(bs[i].y, floor)
				bs[i].lo = math.Max(bs[i].lo, floor)
				bs[i].hi = math.Max(bs[i].hi, floor)
			}
		}
	}

	p.Add(plotter.NewGrid())
	width := 0.8 / float64(len(rep.Runtimes))
	for j, rt := range rep.Runtimes {
		bs := bars[rt]
		if len(bs) == 0 {
			continue
		}
		var rings []plotter.XYer
		for _, b := range bs {
			y := math.Max(b.y, floor)
			x0, x1 := b.x-width/2, b.x+width/2
			rings = append(rings, plotter.XYs{{X: x0, Y: floor}, {X: x1, Y: floor}, {X: x1, Y: y}, {X: x0, Y: y}})
		}
		poly, err := plotter.NewPolygon(rings...)
		if err != nil {
			return nil, err
		}
		poly.Color = plotutil.Color(j)
		poly.LineStyle.Width = 0
		eb, err := plotter.NewYErrorBars(errs(bs))
		if err != nil {
			return nil, err
		}
		p.Add(poly, eb)
		p.Legend.Add(rt, poly)
	}
	return p, nil
}

// WritePlot saves the plot as SVG or PNG, by path's extension.
func WritePlot(path string, rep *Report) error {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".svg" && ext != ".png" {
		return fmt.Errorf("plot format %q: use .svg or .png", ext)
	}
	p, err := Plot(rep)
	if err != nil {
		return err
	}
	_, names := normalised(rep)
	w := vg.Length(2+0.5*float64(len(names))) * vg.Inch
	if w < 6*vg.Inch {
		w = 6 * vg.Inch
	}
	return p.Save(w, 5*vg.Inch, path)
}
