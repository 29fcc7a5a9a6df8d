package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
)

// ioMetric is a row of the I/O table; higherIsBetter says which way the
// issue's target points, for the rows that have one.
type ioMetric struct {
	metric
	target         bool
	higherIsBetter bool
}

var throughputPhases = []struct{ name, label string }{
	{"read", "disk read"}, {"write", "disk write"}, {"tx", "TCP guest→host"}, {"rx", "TCP host→guest"},
}

func ioMetrics(c *config) []ioMetric {
	m := []ioMetric{
		{metric{"disk seq read, 1 MiB O_DIRECT (MiB/s)", "%.1f", func(s sample) float64 { return s.rate(c, "read") }}, true, true},
		{metric{"disk seq write, 1 MiB O_DIRECT + fdatasync (MiB/s)", "%.1f", func(s sample) float64 { return s.rate(c, "write") }}, true, true},
		{metric{fmt.Sprintf("disk random read, 4 KiB, %d in flight (IOPS)", c.ioDepth), "%.0f", func(s sample) float64 { return s.perSecond(c, "randread") }}, true, true},
		{metric{"TCP guest→host (MiB/s)", "%.1f", func(s sample) float64 { return s.rate(c, "tx") }}, true, true},
		{metric{"TCP host→guest (MiB/s)", "%.1f", func(s sample) float64 { return s.rate(c, "rx") }}, true, true},
		{metric{"TCP 1-byte round trip, median (µs)", "%.0f", func(s sample) float64 {
			return float64(s.io["echo"].latency.Nanoseconds()) / 1e3
		}}, false, false},
	}
	for _, p := range throughputPhases {
		m = append(m, ioMetric{metric{"KVM exits per MiB, " + p.label, "%.1f", func(s sample) float64 {
			return float64(s.io[p.name].exits) / mib(mustPhase(p.name).bytes(c))
		}}, true, false})
	}
	for _, p := range throughputPhases {
		m = append(m, ioMetric{metric: metric{"  of which served in VMM user space, " + p.label, "%.1f", func(s sample) float64 {
			r := s.io[p.name]
			if !r.hasUser {
				return math.NaN()
			}
			return float64(r.userExits) / mib(mustPhase(p.name).bytes(c))
		}}})
	}
	m = append(m,
		ioMetric{metric: metric{"KVM exits per 4 KiB random read", "%.2f", func(s sample) float64 {
			return float64(s.io["randread"].exits) / float64(c.ioOps)
		}}},
		ioMetric{metric: metric{"KVM exits per round trip", "%.2f", func(s sample) float64 {
			return float64(s.io["echo"].exits) / float64(c.ioEchoes)
		}}})
	for _, p := range throughputPhases {
		m = append(m, ioMetric{metric: metric{"VMM CPU ms per MiB, " + p.label, "%.1f", func(s sample) float64 {
			return float64(s.io[p.name].cpu.Milliseconds()) / mib(mustPhase(p.name).bytes(c))
		}}})
	}
	return m
}

func mustPhase(name string) phase {
	ph, ok := findPhase(name)
	if !ok {
		panic("bench: no phase " + name)
	}
	return ph
}

func printIOTable(w io.Writer, c *config, results []result) {
	fmt.Fprintf(w, "I/O: virtio-blk on a %d MiB raw image, virtio-net on a tap; median (min–max) over %d rounds,\n", c.ioMiB, c.ioRuns)
	fmt.Fprintln(w, "each round booting the systems together and running each phase on one after the other")
	var ms []metric
	for _, m := range ioMetrics(c) {
		ms = append(ms, m.metric)
	}
	writeTable(w, results, ms, "runs ok", c.ioRuns)
}

// printIOTargets: at least QEMU's throughput, no more exits per MiB. The
// verdict is on govmm's value over QEMU's within each round, whose phases
// ran seconds apart (runIO), and their median: the sandbox's drift between
// rounds cancels out of the ratio, where it would not between medians.
func printIOTargets(w io.Writer, c *config, results []result) {
	fmt.Fprintln(w, "\nI/O targets from the issue: govmm/QEMU within each round, median of the rounds")
	if len(results) < 2 {
		fmt.Fprintln(w, "  none compared: QEMU was not run (-systems)")
		return
	}
	gov, qemu := results[0], results[1]
	for _, m := range ioMetrics(c) {
		if !m.target {
			continue
		}
		g, q := summarize(gov, m.metric), summarize(qemu, m.metric)
		ratios := pairedRatios(gov, qemu, m.metric)
		if len(ratios) == 0 {
			fmt.Fprintf(w, "  %s: unknown (no round with a sample of both)\n", m.label)
			continue
		}
		evenOrAhead := func(ratio float64) bool {
			if m.higherIsBetter {
				return ratio >= 1
			}
			return ratio <= 1
		}
		ahead := 0
		for _, x := range ratios {
			if evenOrAhead(x) {
				ahead++
			}
		}
		r := summarizeValues(ratios)
		met := evenOrAhead(r.med)
		fmt.Fprintf(w, "  %s: %s (govmm/QEMU %.3f, %.3f–%.3f; govmm even or ahead in %d of %d rounds; medians %s "+m.format+", %s "+m.format+")\n",
			m.label, verdict(met), r.med, r.min, r.max, ahead, r.n, gov.name, g.med, qemu.name, q.med)
	}
}

// pairedRatios is govmm's value over QEMU's for each round both have.
func pairedRatios(gov, qemu result, m metric) []float64 {
	theirs := map[int]float64{}
	for _, s := range qemu.samples {
		theirs[s.round] = m.value(s)
	}
	var rs []float64
	for _, s := range gov.samples {
		if q, ok := theirs[s.round]; ok && q > 0 && !math.IsNaN(q) {
			rs = append(rs, m.value(s)/q)
		}
	}
	return rs
}

// detailPhase is a phase -exit-detail breaks down, and what it counts per:
// a MiB moved, or one operation.
type detailPhase struct {
	name, unit string
	per        func(c *config) float64
}

// detailPhases are the throughput phases, per MiB, then the two phases
// counted per operation.
func detailPhases() []detailPhase {
	var ps []detailPhase
	for _, p := range throughputPhases {
		ps = append(ps, detailPhase{p.name, "MiB, " + p.label, func(c *config) float64 { return mib(mustPhase(p.name).bytes(c)) }})
	}
	perOp := func(name string) func(c *config) float64 {
		return func(c *config) float64 { return float64(mustPhase(name).ops(c)) }
	}
	return append(ps, detailPhase{"randread", "4 KiB random read", perOp("randread")},
		detailPhase{"echo", "TCP round trip", perOp("echo")})
}

// printExitDetail shows, for each phase, every KVM statistic that grew and
// every govmm virtqueue count, per MiB or per operation: which exits one
// system takes more of, and how many requests each kick and interrupt served.
func printExitDetail(w io.Writer, c *config, results []result) {
	for _, p := range detailPhases() {
		per := p.per(c)
		names := map[string]bool{}
		for _, r := range results {
			for _, s := range r.samples {
				for k := range s.io[p.name].kvm {
					names[k] = true
				}
			}
		}
		var ms []metric
		for _, k := range slices.Sorted(maps.Keys(names)) {
			ms = append(ms, metric{k, "%.2f", func(s sample) float64 { return float64(s.io[p.name].kvm[k]) / per }})
		}
		fmt.Fprintf(w, "\nPer %s: KVM's vCPU statistics and govmm's virtqueue counts (median over runs)\n", p.unit)
		writeTable(w, results, ms, "runs ok", c.ioRuns)
	}
}
