package compare

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
)

// WriteJSON writes the whole report, raw samples included.
func WriteJSON(w io.Writer, r *Report) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// ReadJSON reads what WriteJSON wrote.
func ReadJSON(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, err
	}
	return &r, nil
}

// WriteCSV writes one line per measure and runtime: the summary, and the
// ratio to the baseline (empty for the baseline itself or a missing value).
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"measure", "name", "unit", "runtime", "n", "median", "min", "max", "ratio_to_" + r.Baseline})
	for _, row := range r.Rows {
		for _, rt := range r.Runtimes {
			s, ok := row.Summary(rt)
			if !ok {
				continue
			}
			ratio := ""
			if rt != r.Baseline {
				if f, ok := row.Ratio(rt, r.Baseline); ok {
					ratio = strconv.FormatFloat(f, 'g', 6, 64)
				}
			}
			cw.Write([]string{row.Key, row.Name, row.Unit, rt, strconv.Itoa(s.N),
				formatFloat(s.Median), formatFloat(s.Min), formatFloat(s.Max), ratio})
		}
	}
	cw.Flush()
	return cw.Error()
}
