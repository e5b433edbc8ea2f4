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

// fasterNotes returns, for each ratio where an isolated instance beats
// native beyond the range, one sentence with what could explain it.
func fasterNotes(rs []analysis.Ratio) []string {
	var out []string
	for _, r := range rs {
		if r.Note != "" {
			out = append(out, fmt.Sprintf("%s beats native on %s %s (%.2f× [%.2f-%.2f]): %s.", r.Variant, r.Workload, r.Metric, r.Value, r.Lo, r.Hi, r.Note))
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
