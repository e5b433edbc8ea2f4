package reports

import (
	"fmt"
	"io"

	"virtbench/analysis"
	"virtbench/internal/units"
)

// WriteCompare writes the comparison as a table: one row per metric and
// compared run, with the host as a column.
func WriteCompare(w io.Writer, changes []analysis.Change) error {
	var rows [][]string
	for _, c := range changes {
		verdict := "~"
		switch {
		case c.Regression:
			verdict = "worse"
		case c.Improvement:
			verdict = "better"
		case c.Significant && c.Delta != 0:
			verdict = "changed"
		}
		if c.Note != "" && !c.Significant {
			verdict += " (" + c.Note + ")"
		}
		wl := c.Workload
		if c.Instances > 1 {
			wl += fmt.Sprintf(" ×%d", c.Instances)
		}
		rows = append(rows, []string{c.Host, c.Variant, wl, c.Metric, units.Format(c.Old, c.Unit), units.Format(c.New, c.Unit),
			fmt.Sprintf("%+.1f%%", 100*c.Delta), fmt.Sprintf("%.3f", c.P), verdict})
	}
	return writeTextTable(w, []string{"host", "variant", "workload", "metric", "old", "new", "delta", "p", "verdict"}, rows)
}
