package compare

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func parseFloat(s string) (float64, error) { return strconv.ParseFloat(s, 64) }

// num prints a value with three significant digits, enough to read a
// difference between runtimes and no more than the noise allows.
func num(f float64) string {
	switch {
	case f == 0:
		return "0"
	case f >= 1000 || f <= -1000:
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'g', 3, 64)
}

// Cell is "median (min–max)", or "—" when there is no value.
func Cell(s Summary, ok bool) string {
	if !ok {
		return "—"
	}
	lo, hi := num(s.Min), num(s.Max)
	if lo == hi { // one run, or a spread below the digits shown
		return num(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", num(s.Median), lo, hi)
}

// RatioCell is "1.23×" or "—".
func RatioCell(f float64, ok bool) string {
	if !ok {
		return "—"
	}
	return strconv.FormatFloat(f, 'f', 2, 64) + "×"
}

// others are the runtimes that get a ratio column.
func (r *Report) others() []string {
	var out []string
	for _, rt := range r.Runtimes {
		if rt != r.Baseline {
			out = append(out, rt)
		}
	}
	return out
}

// WriteTable prints the report as a terminal table.
func WriteTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"measure", "unit"}
	head = append(head, r.Runtimes...)
	for _, rt := range r.others() {
		head = append(head, rt+"/"+r.Baseline)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, row := range r.Rows {
		if row.Empty() {
			continue
		}
		unit := row.Unit
		if row.Higher {
			unit += " ↑"
		}
		cells := []string{row.Name, unit}
		for _, rt := range r.Runtimes {
			cells = append(cells, Cell(row.Summary(rt)))
		}
		for _, rt := range r.others() {
			cells = append(cells, RatioCell(row.Ratio(rt, r.Baseline)))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d runs each, interleaved; median (min–max); ↑ more is better, otherwise less; bundle %s\n", r.Runs, r.Bundle)
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	return nil
}
