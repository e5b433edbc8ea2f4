package reports

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"virtbench/internal/results"
)

// WriteTerminal writes what a run answers, for a terminal, as hyperfine
// does: one block per variant (its start with the 95% interval and run
// count, against the baseline; its memory per instance; its speed against
// the baseline), then the headline, the claims, capacity and the VM
// techniques. verbose first writes the table of every metric and the
// ratios to the baseline (as results.md has them).
func WriteTerminal(w io.Writer, a *Analysis, verbose bool) error {
	if verbose {
		if err := WriteText(w, a.Summaries); err != nil {
			return err
		}
		if len(a.Ratios) > 0 {
			fmt.Fprintf(w, "\nrelative to %s (same run; above 1 is faster; range from the 95%% CIs; p: Mann-Whitney U):\n", a.Baseline)
			if err := WriteRatios(w, a.Ratios); err != nil {
				return err
			}
		}
		fmt.Fprintln(w)
	}
	for _, v := range startedVariants(a.Summaries) {
		writeVariantBlock(w, a, v)
	}
	for _, n := range fasterNotes(a.Ratios) {
		fmt.Fprintln(w, "note: "+n)
	}
	fmt.Fprintf(w, "\n%s\n\nclaims:\n", Headline(a.Summaries, a.Baseline))
	if err := WriteClaimsText(w, a.Claims); err != nil {
		return err
	}
	if len(a.Capacity) > 0 {
		fmt.Fprintln(w, "\ncapacity:")
		if err := WriteCapacity(w, a.Capacity); err != nil {
			return err
		}
	}
	if len(a.Techniques) > 0 {
		fmt.Fprintln(w, "\nVM techniques against their baselines (above 1: the technique did better; range from the 95% CIs; p: Mann-Whitney U):")
		if err := writeTextTable(w, techniqueHeader, techniqueRows(a.Techniques, nil)); err != nil {
			return err
		}
		if a.DevicesNote != "" {
			fmt.Fprintln(w, a.DevicesNote)
		}
		for _, n := range a.TechniqueNotes {
			fmt.Fprintln(w, n)
		}
	}
	if !verbose {
		fmt.Fprintln(w, "\nevery metric: results.md, or virtbench report RUN_DIR --format text -v")
	}
	return nil
}

// startedVariants returns the variants with a start or a density sweep
// measured, in the order they first appear.
func startedVariants(sums []results.Summary) []string {
	var out []string
	for _, s := range sums {
		if (s.Metric == results.MetricStartup || s.Metric == results.MetricDensityReached) && s.N > 0 && !slices.Contains(out, s.Driver) {
			out = append(out, s.Driver)
		}
	}
	return out
}

// densityLines says how far variant's density sweep got and why it
// stopped, and what one instance cost at its largest step.
func densityLines(w io.Writer, sums []results.Summary, v string) {
	reached, ok := largest(sums, v, results.MetricDensityReached)
	if !ok {
		return
	}
	fmt.Fprintf(w, "  %-18s %.0f instances; stopped: %s\n", "Density:", reached.Max, reached.Labels[results.LabelStopReason])
	var parts []string
	for _, m := range []struct{ metric, what string }{{results.MetricDensityPSS, "PSS"}, {results.MetricDensityMemDrop, "MemAvailable drop"}, {results.MetricDensityCPU, "CPU"}} {
		if s, ok := largest(sums, v, m.metric); ok {
			parts = append(parts, fmt.Sprintf("%s %s", m.what, FormatValue(s.Median, s.Unit)))
		}
	}
	if s, ok := largest(sums, v, results.MetricDensityMemDrop); ok && len(parts) > 0 {
		fmt.Fprintf(w, "  %-18s %s per instance at %d instances\n", "At the last step:", strings.Join(parts, ", "), s.Instances)
	}
	rss, okR := largest(sums, v, results.MetricHarnessRSS)
	sweep, okS := largest(sums, v, results.MetricSamplerDuration)
	if okR && okS {
		what := "every instance"
		if read, ok := largest(sums, v, results.MetricDensityPSSSampled); ok && int(read.Max) < rss.Instances {
			what = fmt.Sprintf("every instance's tasks, the memory of %d", int(read.Max))
		}
		fmt.Fprintf(w, "  %-18s RSS %s, one sampling %s (%s), at %d instances\n", "virtbench itself:", FormatValue(rss.Max, rss.Unit), FormatValue(sweep.Max, sweep.Unit), what, rss.Instances)
	}
}

// sweepLine sets variant's sweep beside the capacity model's count.
func sweepLine(w io.Writer, a *Analysis, v string) {
	for _, sc := range a.Sweeps {
		if sc.Variant == v {
			line := fmt.Sprintf("  %-18s %d (%s binds) against %d reached", "Model:", sc.Model, sc.Binding, sc.Reached)
			if sc.Note != "" {
				line += "; " + sc.Note
			}
			fmt.Fprintln(w, line)
		}
	}
}

// idleOne returns the summary of metric of one idle instance of variant
// (the baseline workload), else of the first single instance with a
// median other than 0.
func idleOne(sums []results.Summary, variant, metric string) (results.Summary, bool) {
	var fallback results.Summary
	for _, s := range sums {
		if s.Driver != variant || s.Metric != metric || s.N == 0 || s.Instances != 1 {
			continue
		}
		if results.BaselineWorkload(s.Workload) {
			return s, true
		}
		if fallback.Median == 0 {
			fallback = s
		}
	}
	return fallback, fallback.N > 0
}

// writeVariantBlock writes one variant's block.
func writeVariantBlock(w io.Writer, a *Analysis, v string) {
	role := a.Roles[v]
	kind := string(role.Class)
	if len(role.Accel) > 0 {
		kind += ", " + strings.ToUpper(strings.Join(role.Accel, "+"))
	}
	if role.Baseline {
		kind += ", the baseline"
	}
	if kind == "" {
		fmt.Fprintln(w, v)
	} else {
		fmt.Fprintf(w, "%s (%s)\n", v, kind)
	}
	if s, ok := idleOne(a.Summaries, v, results.MetricStartup); ok {
		spread := fmt.Sprintf("95%% CI %s; range %s … %s", ciText(s), FormatValue(s.Min, s.Unit), FormatValue(s.Max, s.Unit))
		if s.CILo == s.Min && s.CIHi == s.Max {
			// Too few runs for an interval narrower than the range.
			spread = fmt.Sprintf("range %s … %s, also its 95%% CI", FormatValue(s.Min, s.Unit), FormatValue(s.Max, s.Unit))
		}
		line := fmt.Sprintf("  %-18s %s  (%s; %d runs)", "Start to READY:", FormatValue(s.Median, s.Unit), spread, s.N)
		if b, ok := idleOne(a.Summaries, a.Baseline, results.MetricStartup); ok && v != a.Baseline && b.Median > 0 {
			line += fmt.Sprintf("  %.1f× %s", s.Median/b.Median, a.Baseline)
		}
		fmt.Fprintln(w, line)
	}
	densityLines(w, a.Summaries, v)
	sweepLine(w, a, v)
	if mem := memoryLine(a.Summaries, v); mem != "" {
		fmt.Fprintf(w, "  %-18s %s\n", "Memory:", mem)
	}
	var speeds []string
	for _, r := range a.Ratios {
		if r.Driver == v {
			speeds = append(speeds, fmt.Sprintf("%s %.3g× [%.3g-%.3g]", r.Metric, r.Value, r.Lo, r.Hi))
		}
	}
	if len(speeds) > 0 {
		fmt.Fprintf(w, "  %-18s %s\n", "Speed vs "+a.Baseline+":", strings.Join(speeds, ", "))
	}
}

// memoryLine says what one idle instance of variant holds: its PSS and
// the host's MemAvailable drop per instance (or that the drop is within
// the host's noise).
func memoryLine(sums []results.Summary, v string) string {
	var parts []string
	if s, ok := idleOne(sums, v, results.MetricPSS); ok {
		parts = append(parts, "PSS "+FormatValue(s.Median, s.Unit))
	}
	if s, ok := idleOne(sums, v, results.MetricHostMemDrop); ok {
		if bound, within := hostNoise(sums).within(s); within {
			parts = append(parts, "MemAvailable drop below the host's noise (±"+FormatValue(bound, s.Unit)+")")
		} else {
			parts = append(parts, "MemAvailable drop "+FormatValue(s.Median, s.Unit))
		}
	}
	return strings.Join(parts, "; ")
}
