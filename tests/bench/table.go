package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// result is every successful boot of one system.
type result struct {
	name    string
	qemu    bool
	samples []sample
}

// metric is one row of the table.
type metric struct {
	label  string
	format string
	value  func(sample) float64
}

// overheadTargetMiB is issue 18's bound on govmm's own memory.
const overheadTargetMiB = 2.0

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

var (
	toInitMetric   = metric{"launch→init (s)", "%.2f", func(s sample) float64 { return s.toInit.Seconds() }}
	overheadMetric = metric{"RSS excl. guest RAM (MiB)", "%.1f", func(s sample) float64 { return mib(s.overhead()) }}
)

func exitMetric(name string) metric {
	label := name + " to init"
	if name != "exits" {
		label = "  " + name
	}
	return metric{label, "%.0f", func(s sample) float64 { return float64(s.exits[name]) }}
}

// preemptionMetric counts the times the host took a vCPU's CPU away from
// it to init, summed over vCPUs: KVM's preemption_reported (the vCPU was
// runnable, another thread ran) and preemption_other. The VMM's own threads
// and the bench's reader of its output are among the takers.
var preemptionMetric = metric{"vCPU preemptions to init", "%.0f", func(s sample) float64 {
	reported, ok1 := s.exits["preemption_reported"]
	other, ok2 := s.exits["preemption_other"]
	if !ok1 && !ok2 {
		return math.NaN()
	}
	return float64(reported + other)
}}

func metrics(results []result) []metric {
	m := []metric{
		toInitMetric,
		{"launch→exit (s)", "%.2f", func(s sample) float64 { return s.toExit.Seconds() }},
		{"guest uptime at init (s)", "%.2f", func(s sample) float64 { return s.uptime }},
		overheadMetric,
		{"VMM CPU user+sys (s)", "%.2f", func(s sample) float64 { return s.cpu.Seconds() }},
		preemptionMetric,
	}
	for _, name := range exitCounters(results) {
		m = append(m, exitMetric(name))
	}
	return m
}

// exitCounters are the exit statistics every system reports, nonzero in at
// least one boot: "exits" first, then by name.
func exitCounters(results []result) []string {
	seen, nonzero, boots := map[string]int{}, map[string]bool{}, 0
	for _, r := range results {
		for _, s := range r.samples {
			boots++
			for name, v := range s.exits {
				if name == "exits" || strings.HasSuffix(name, "_exits") {
					seen[name]++
					nonzero[name] = nonzero[name] || v > 0
				}
			}
		}
	}
	var out []string
	for name, n := range seen {
		if n == boots && nonzero[name] {
			out = append(out, name)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == "exits":
			return -1
		case b == "exits":
			return 1
		}
		return strings.Compare(a, b)
	})
	return out
}

// summary is the median and range of one metric over a system's boots.
type summary struct {
	n             int
	med, min, max float64
}

func summarize(r result, m metric) summary {
	// NaN is a value the system does not report: left out.
	xs := make([]float64, 0, len(r.samples))
	for _, s := range r.samples {
		if v := m.value(s); !math.IsNaN(v) {
			xs = append(xs, v)
		}
	}
	return summarizeValues(xs)
}

// summarizeValues sorts xs in place and summarizes it.
func summarizeValues(xs []float64) summary {
	if len(xs) == 0 {
		return summary{}
	}
	slices.Sort(xs)
	med := xs[len(xs)/2]
	if len(xs)%2 == 0 {
		med = (xs[len(xs)/2-1] + med) / 2
	}
	return summary{n: len(xs), med: med, min: xs[0], max: xs[len(xs)-1]}
}

func (s summary) cell(format string) string {
	switch s.n {
	case 0:
		return "-"
	case 1:
		return fmt.Sprintf(format, s.med)
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", s.med, s.min, s.max)
}

func printTable(w io.Writer, results []result, runs int) {
	fmt.Fprintf(w, "median (min–max) over %d runs; RSS and exits at the init marker\n", runs)
	writeTable(w, results, metrics(results), "boots ok", runs)
}

// writeTable prints one row per metric and a column per system, then how
// many of runs succeeded under okLabel.
func writeTable(w io.Writer, results []result, ms []metric, okLabel string, runs int) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	row := []string{"metric"}
	for _, r := range results {
		row = append(row, r.name)
	}
	fmt.Fprintln(tw, strings.Join(row, "\t"))
	for _, m := range ms {
		row = []string{m.label}
		for _, r := range results {
			row = append(row, summarize(r, m).cell(m.format))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	row = []string{okLabel}
	for _, r := range results {
		row = append(row, fmt.Sprintf("%d/%d", len(r.samples), runs))
	}
	fmt.Fprintln(tw, strings.Join(row, "\t"))
	tw.Flush()
}

func printTargets(w io.Writer, results []result) {
	fmt.Fprintln(w, "\nTargets from the issue, on medians of this run unless a line says otherwise:")
	for _, line := range targets(results) {
		fmt.Fprintln(w, "  "+line)
	}
}

// targets says whether govmm (results[0]) meets each of the goals.
func targets(results []result) []string {
	gov := results[0]
	var qemus, govs []result
	for _, r := range results {
		if r.qemu {
			qemus = append(qemus, r)
		} else {
			govs = append(govs, r)
		}
	}
	return []string{
		compareToQEMU("launch→init below every QEMU variant's median", gov, qemus, toInitMetric, " s"),
		compareToQEMU("fewer exits to init than the best QEMU variant", gov, qemus, exitMetric("exits"), ""),
		fastestRatio(govs, qemus, 0.6),
		fewerExitsEveryRun(results),
		overheadTarget(gov),
	}
}

// fewerExitsEveryRun: each govmm path against QEMU's microvm on the same
// path (bzImage with bzImage, PVH with PVH), round by round: fewer exits to
// init in every round both booted.
func fewerExitsEveryRun(results []result) string {
	const goal = "fewer exits to init than QEMU microvm in every run"
	byName := map[string]result{}
	for _, r := range results {
		byName[r.name] = r
	}
	var parts []string
	met := true
	for _, pair := range [][2]string{{"govmm", "qemu microvm"}, {"govmm pvh", "qemu microvm pvh"}} {
		ratios := pairedRatios(byName[pair[0]], byName[pair[1]], exitMetric("exits"))
		paired, fewer := len(ratios), 0
		for _, r := range ratios {
			if r < 1 {
				fewer++
			}
		}
		if paired == 0 {
			continue
		}
		met = met && fewer == paired
		parts = append(parts, fmt.Sprintf("%s fewer than %s in %d of %d", pair[0], pair[1], fewer, paired))
	}
	if len(parts) == 0 {
		return goal + ": unknown (no round with both govmm and microvm booted)"
	}
	return fmt.Sprintf("%s: %s (%s)", goal, verdict(met), strings.Join(parts, "; "))
}

// fastestRatio: govmm's fastest boot path, launch → init, against QEMU's
// fastest, by medians.
func fastestRatio(govs, qemus []result, limit float64) string {
	goal := fmt.Sprintf("govmm's fastest path launch→init at most %.1f× QEMU's fastest", limit)
	g, gName := fastest(govs, toInitMetric)
	q, qName := fastest(qemus, toInitMetric)
	if gName == "" || qName == "" {
		return goal + ": unknown (no successful boot to compare)"
	}
	return fmt.Sprintf("%s: %s (%s %.2f s; %s %.2f s; %.2f×)", goal, verdict(g <= limit*q), gName, g, qName, q, g/q)
}

// fastest is the smallest median of m among rs, and whose it is.
func fastest(rs []result, m metric) (float64, string) {
	best, name := math.Inf(1), ""
	for _, r := range rs {
		if s := summarize(r, m); s.n > 0 && s.med < best {
			best, name = s.med, r.name
		}
	}
	return best, name
}

// compareToQEMU: govmm's median must be below the smallest QEMU median.
func compareToQEMU(goal string, gov result, qemus []result, m metric, unit string) string {
	g := summarize(gov, m)
	best, bestName := math.Inf(1), ""
	for _, q := range qemus {
		if s := summarize(q, m); s.n > 0 && s.med < best {
			best, bestName = s.med, q.name
		}
	}
	if g.n == 0 || bestName == "" {
		return goal + ": unknown (no successful boot to compare)"
	}
	return fmt.Sprintf("%s: %s (%s "+m.format+"%s; best QEMU, %s: "+m.format+"%s)",
		goal, verdict(g.med < best), gov.name, g.med, unit, bestName, best, unit)
}

func overheadTarget(gov result) string {
	goal := fmt.Sprintf("VMM overhead under %.1f MiB RSS", overheadTargetMiB)
	g := summarize(gov, overheadMetric)
	if g.n == 0 {
		return goal + ": unknown (no successful boot of govmm)"
	}
	return fmt.Sprintf("%s: %s (govmm %.1f MiB)", goal, verdict(g.med < overheadTargetMiB), g.med)
}

func verdict(met bool) string {
	if met {
		return "MET"
	}
	return "NOT MET"
}
