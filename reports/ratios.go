package reports

import (
	"fmt"
	"io"

	"virtbench/analysis"
)

// ratioHeader is the header of the ratio tables.
var ratioHeader = []string{"variant", "workload", "metric", "vs native", "range", "p", "verdict"}

// ratioRows returns one formatted row per ratio.
func ratioRows(rs []analysis.Ratio) [][]string {
	var rows [][]string
	for _, r := range rs {
		verdict := "differs from native"
		if r.Same {
			verdict = "same as native"
		}
		rows = append(rows, []string{r.Variant, r.Workload, r.Metric, fmt.Sprintf("%.3f", r.Value),
			fmt.Sprintf("%.3f-%.3f", r.Lo, r.Hi), fmt.Sprintf("%.3f", r.P), verdict})
	}
	return rows
}

// setupNotes returns, for each ratio with a note (an isolated instance
// beating native beyond the range, or falling behind it where its setup
// explains why), one sentence with what could explain it.
func setupNotes(rs []analysis.Ratio) []string {
	var out []string
	for _, r := range rs {
		if r.Note != "" {
			how := "beats"
			if r.Hi < 1 {
				how = "falls behind"
			}
			out = append(out, fmt.Sprintf("%s %s native on %s %s (%.2f× [%.2f-%.2f]): %s.", r.Variant, how, r.Workload, r.Metric, r.Value, r.Lo, r.Hi, r.Note))
		}
	}
	return out
}

// WriteRatios writes the ratios as a table for a terminal.
func WriteRatios(w io.Writer, rs []analysis.Ratio) error {
	return writeTextTable(w, ratioHeader, ratioRows(rs))
}

// WriteRatiosMarkdown writes the ratios as a Markdown table.
func WriteRatiosMarkdown(w io.Writer, rs []analysis.Ratio) error {
	return writeMarkdownTable(w, ratioHeader, ratioRows(rs))
}
