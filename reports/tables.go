package reports

import (
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"virtbench/internal/results"
)

// tableHeader is the header of the summary tables.
var tableHeader = []string{"driver", "workload", "n", "metric", "median", "±95% CI", "p25", "p75", "min", "max", "CoV", "notes"}

// tableRows returns one row per summary, values formatted with units.
func tableRows(sums []results.Summary) [][]string {
	var rows [][]string
	for _, s := range sums {
		wl := s.Workload
		if s.Instances > 1 {
			wl += fmt.Sprintf(" ×%d", s.Instances)
		}
		f := func(v float64) string {
			if s.N == 0 {
				return "-"
			}
			return FormatValue(v, s.Unit)
		}
		ci := "-"
		if s.N > 0 && s.Median != 0 && (s.CILo != s.Median || s.CIHi != s.Median) {
			ci = fmt.Sprintf("-%.1f%% +%.1f%%", 100*(s.Median-s.CILo)/abs(s.Median), 100*(s.CIHi-s.Median)/abs(s.Median))
		}
		rows = append(rows, []string{
			s.Driver, wl, strconv.Itoa(s.N), s.Metric, f(s.Median), ci, f(s.P25), f(s.P75), f(s.Min), f(s.Max),
			fmt.Sprintf("%.1f%%", 100*s.CoV), strings.Join(s.Warnings, "; "),
		})
	}
	return rows
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// WriteText writes the summary table for a terminal.
func WriteText(w io.Writer, sums []results.Summary) error {
	return writeTextTable(w, tableHeader, tableRows(sums))
}

// WriteMarkdown writes the summary table as a Markdown table.
func WriteMarkdown(w io.Writer, sums []results.Summary) error {
	return writeMarkdownTable(w, tableHeader, tableRows(sums))
}

// writeTextTable writes rows under header in aligned columns.
func writeTextTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// writeMarkdownTable writes rows under header as a Markdown table.
func writeMarkdownTable(w io.Writer, header []string, rows [][]string) error {
	line := func(cells []string) {
		esc := make([]string, len(cells))
		for i, c := range cells {
			esc[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(esc, " | "))
	}
	line(header)
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = "---"
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(sep, "|"))
	for _, r := range rows {
		line(r)
	}
	return nil
}

// WriteCSV writes the summaries as CSV with raw (unscaled) numbers.
func WriteCSV(w io.Writer, sums []results.Summary) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"driver", "workload", "instances", "metric", "unit", "n", "failed", "median", "ci_lo", "ci_hi", "p25", "p75", "p95", "min", "max", "mean", "stddev", "cov", "labels", "warnings"})
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, s := range sums {
		var labels []string
		for k, v := range s.Labels {
			labels = append(labels, k+"="+v)
		}
		sort.Strings(labels)
		_ = cw.Write([]string{s.Driver, s.Workload, strconv.Itoa(s.Instances), s.Metric, s.Unit,
			strconv.Itoa(s.N), strconv.Itoa(s.Failed), g(s.Median), g(s.CILo), g(s.CIHi), g(s.P25), g(s.P75), g(s.P95),
			g(s.Min), g(s.Max), g(s.Mean), g(s.StdDev), g(s.CoV), strings.Join(labels, " "), strings.Join(s.Warnings, "; ")})
	}
	cw.Flush()
	return cw.Error()
}

// WriteClaims writes the claims as a Markdown table.
func WriteClaims(w io.Writer, claims []Claim) error {
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	fmt.Fprintln(w, "| claim | verdict | why | evidence | caveat |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, c := range claims {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", esc(c.Claim), esc(c.Verdict), esc(c.Reason), esc(c.Evidence), esc(c.Caveat))
	}
	return nil
}

// WriteClaimsText writes each claim for a terminal: its verdict and why,
// then its evidence.
func WriteClaimsText(w io.Writer, claims []Claim) error {
	for _, c := range claims {
		fmt.Fprintf(w, "%-12s %s: %s\n%-12s %s\n", c.Name, c.Verdict, c.Reason, "", c.Evidence)
	}
	return nil
}
