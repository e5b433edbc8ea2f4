package reports

import (
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"virtbench/analysis"
	"virtbench/internal/results"
	"virtbench/internal/textsafe"
	"virtbench/internal/units"
)

// tableHeader is the header of the summary tables.
var tableHeader = []string{"variant", "workload", "n", "metric", "median", "±95% CI", "p25", "p75", "min", "max", "CoV", "notes"}

// tableRows returns one row per summary, values formatted with units. A
// MemAvailable drop within the host's noise says so instead of a figure.
func tableRows(x *analysis.Index) [][]string {
	var rows [][]string
	for _, s := range x.Summaries {
		wl := s.Workload
		if s.Instances > 1 {
			wl += fmt.Sprintf(" ×%d", s.Instances)
		}
		f := func(v float64) string {
			if s.N == 0 {
				return "-"
			}
			return units.Format(v, s.Unit)
		}
		median, ci, notes := f(s.Median), ciText(s), s.Warnings
		if bound, ok := x.WithinNoise(s); ok {
			median, ci = "noise", "-"
			notes = append([]string{"below the host's noise (±" + units.Format(bound, s.Unit) + ")"}, notes...)
		}
		rows = append(rows, []string{
			s.Variant, wl, strconv.Itoa(s.N), s.Metric, median, ci, f(s.P25), f(s.P75), f(s.Min), f(s.Max),
			fmt.Sprintf("%.1f%%", 100*s.CoV), strings.Join(notes, "; "),
		})
	}
	return rows
}

// ciText writes a summary's 95% confidence interval: as percentages of
// the median ("-2.1% +3.4%"), or as its bounds ("-96.00KiB … 4.000KiB")
// where the median is near zero: the interval reaches zero, or lies
// further from the median than the median from zero. A summary with too
// few values for an interval has ±∞, as benchstat writes it.
func ciText(s results.Summary) string {
	if s.N == 0 || s.CILo == s.Median && s.CIHi == s.Median {
		return "-"
	}
	if !s.HasInterval() {
		return "±∞"
	}
	lo, hi := s.Median-s.CILo, s.CIHi-s.Median
	if s.CILo <= 0 && s.CIHi >= 0 || lo > abs(s.Median) || hi > abs(s.Median) {
		return units.Format(s.CILo, s.Unit) + " … " + units.Format(s.CIHi, s.Unit)
	}
	return fmt.Sprintf("-%.1f%% +%.1f%%", 100*lo/abs(s.Median), 100*hi/abs(s.Median))
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// WriteText writes the summary table for a terminal.
func WriteText(w io.Writer, x *analysis.Index) error {
	return writeTextTable(w, tableHeader, tableRows(x))
}

// WriteMarkdown writes the summary table as a Markdown table.
func WriteMarkdown(w io.Writer, x *analysis.Index) error {
	return writeMarkdownTable(w, tableHeader, tableRows(x))
}

// writeTextTable writes rows under header in aligned columns.
func writeTextTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(cells []string) { fmt.Fprintln(tw, strings.Join(safeLine(cells), "\t")) }
	line(header)
	for _, r := range rows {
		line(r)
	}
	return tw.Flush()
}

// writeMarkdownTable writes rows under header as a Markdown table.
func writeMarkdownTable(w io.Writer, header []string, rows [][]string) error {
	line := func(cells []string) {
		esc := make([]string, len(cells))
		for i, c := range cells {
			esc[i] = textsafe.Markdown(c)
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
	_ = cw.Write([]string{"variant", "workload", "instances", "metric", "unit", "n", "failed", "median", "ci_lo", "ci_hi", "p25", "p75", "p95", "p99", "min", "max", "mean", "stddev", "cov", "labels", "warnings"})
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	// An interval's bound is empty where there are too few values for one.
	ci := func(s results.Summary, v float64) string {
		if !s.HasInterval() {
			return ""
		}
		return g(v)
	}
	for _, s := range sums {
		var labels []string
		for k, v := range s.Labels {
			labels = append(labels, k+"="+v)
		}
		sort.Strings(labels)
		_ = cw.Write(safeLine([]string{s.Variant, s.Workload, strconv.Itoa(s.Instances), s.Metric, s.Unit,
			strconv.Itoa(s.N), strconv.Itoa(s.Failed), g(s.Median), ci(s, s.CILo), ci(s, s.CIHi), g(s.P25), g(s.P75), g(s.P95), g(s.P99),
			g(s.Min), g(s.Max), g(s.Mean), g(s.StdDev), g(s.CoV), strings.Join(labels, " "), strings.Join(s.Warnings, "; ")}))
	}
	cw.Flush()
	return cw.Error()
}

// safeLine returns cells each made one printable line (textsafe.Line).
func safeLine(cells []string) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = textsafe.Line(c)
	}
	return out
}

// safeRows returns rows with each cell made one printable line.
func safeRows(rows [][]string) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = safeLine(r)
	}
	return out
}

// dimensionHeader heads the table of the performance claim per dimension.
var dimensionHeader = []string{"dimension", "result", "container", "container vs native", "VM", "VM vs native", "container near native", "VM slower"}

// dimensionRows are the performance claim's verdicts per dimension, one
// row each: each side's ratio to native with its range.
func dimensionRows(claims []analysis.Claim) [][]string {
	yes := map[bool]string{true: "yes", false: "no"}
	r := func(x analysis.Ratio) string { return fmt.Sprintf("%.3f [%.3f-%.3f]", x.Value, x.Lo, x.Hi) }
	var rows [][]string
	for _, c := range claims {
		for _, d := range c.Dimensions {
			rows = append(rows, []string{string(d.Dimension), d.Metric, d.Container.Variant, r(d.Container), d.VM.Variant, r(d.VM), yes[d.NearNative], yes[d.Slower]})
		}
	}
	return rows
}

// WriteClaims writes the claims as a Markdown table.
func WriteClaims(w io.Writer, claims []analysis.Claim) error {
	esc := textsafe.Markdown
	fmt.Fprintln(w, "| claim | verdict | why | evidence | caveat |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, c := range claims {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", esc(c.Claim), esc(string(c.Verdict)), esc(c.Reason), esc(c.Evidence), esc(c.Caveat))
	}
	return nil
}

// WriteClaimsText writes each claim for a terminal: its verdict and why,
// then its evidence.
func WriteClaimsText(w io.Writer, claims []analysis.Claim) error {
	for _, c := range claims {
		fmt.Fprintf(w, "%-12s %s: %s\n%-12s %s\n", c.Name, c.Verdict, textsafe.Line(c.Reason), "", textsafe.Line(c.Evidence))
	}
	return nil
}
