package reports

import (
	"fmt"
	"io"
	"strings"

	"virtbench/analysis"
	"virtbench/internal/results"
	"virtbench/internal/units"
)

// WriteTerminal writes what a run answers, for a terminal, as hyperfine
// does: one block per variant (its start with the 95% interval and run
// count, against the baseline; its memory per instance; its speed against
// the baseline), then the headline, the claims, capacity and the VM
// techniques. verbose first writes the table of every metric and the
// ratios to the baseline (as results.md has them).
func WriteTerminal(w io.Writer, a *analysis.Analysis, verbose bool) error {
	if verbose {
		if err := WriteText(w, a.Index); err != nil {
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
	for _, v := range a.Index.Started() {
		writeVariantBlock(w, a, v)
	}
	for _, n := range setupNotes(a.Ratios) {
		fmt.Fprintln(w, "note: "+n)
	}
	fmt.Fprintf(w, "\n%s\n", Headline(a.Index, a.Baseline))
	if line := hostLine(a.Host); line != "" {
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "\nclaims:\n")
	if err := WriteClaimsText(w, a.Claims); err != nil {
		return err
	}
	if len(a.Capacity) > 0 {
		fmt.Fprintln(w, "\ncapacity:")
		if err := WriteCapacity(w, a.Capacity); err != nil {
			return err
		}
	}
	if err := writeTextSection(w, "capacity at the load objective:", objectiveHeader, objectiveRows(a.Capacity), ObjectiveModel); err != nil {
		return err
	}
	if verbose {
		if err := writeTextSection(w, "start storms:", stormHeader, stormRows(a.Storms()), StormModel); err != nil {
			return err
		}
	}
	if err := writeTextSection(w, "for OpenStack Nova (virtbench report RUN_DIR --format runtimeclass writes Kubernetes RuntimeClasses):", novaHeader, novaRows(a.Nova()), NovaModel); err != nil {
		return err
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
		return nil
	}
	return writeTextSection(w, "headroom at the top of each density sweep:", headroomHeader, headroomRows(a.Headrooms()), HeadroomModel)
}

// writeTextSection writes a heading, a table and the model that explains
// it, when the table has rows.
func writeTextSection(w io.Writer, heading string, header []string, rows [][]string, model string) error {
	if len(rows) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\n"+heading)
	if err := writeTextTable(w, header, rows); err != nil {
		return err
	}
	fmt.Fprintln(w, model)
	return nil
}

// densityLines says how far variant's density sweep got and why it
// stopped, and what one instance cost at its largest step.
func densityLines(w io.Writer, x *analysis.Index, v string) {
	reached, ok := x.Largest(v, results.MetricDensityReached)
	if !ok {
		return
	}
	fmt.Fprintf(w, "  %-18s %.0f instances; stopped: %s\n", "Density:", reached.Max, reached.Labels[results.LabelStopReason])
	var parts []string
	for _, m := range []struct{ metric, what string }{{results.MetricDensityPSS, "PSS"}, {results.MetricDensityMemDrop, "MemAvailable drop"}, {results.MetricDensityCPU, "CPU"}} {
		if s, ok := x.Largest(v, m.metric); ok {
			parts = append(parts, fmt.Sprintf("%s %s", m.what, units.Format(s.Median, s.Unit)))
		}
	}
	if s, ok := x.Largest(v, results.MetricDensityMemDrop); ok && len(parts) > 0 {
		fmt.Fprintf(w, "  %-18s %s per instance at %d instances\n", "At the last step:", strings.Join(parts, ", "), s.Instances)
	}
	rss, okR := x.Largest(v, results.MetricHarnessRSS)
	sweep, okS := x.Largest(v, results.MetricSamplerDuration)
	if okR && okS {
		what := "every instance"
		if read, ok := x.Largest(v, results.MetricDensityPSSSampled); ok && int(read.Max) < rss.Instances {
			what = fmt.Sprintf("every instance's tasks, the memory of %d", int(read.Max))
		}
		fmt.Fprintf(w, "  %-18s RSS %s, one sampling %s (%s), at %d instances\n", "virtbench itself:", units.Format(rss.Max, rss.Unit), units.Format(sweep.Max, sweep.Unit), what, rss.Instances)
	}
}

// sweepLine sets variant's sweep beside the capacity model's count.
func sweepLine(w io.Writer, a *analysis.Analysis, v string) {
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

// writeVariantBlock writes one variant's block.
func writeVariantBlock(w io.Writer, a *analysis.Analysis, v string) {
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
	if s, ok := a.Index.Single(v, results.MetricStartup); ok {
		spread := fmt.Sprintf("95%% CI %s; range %s … %s", ciText(s), units.Format(s.Min, s.Unit), units.Format(s.Max, s.Unit))
		switch {
		case !s.HasInterval():
			spread = fmt.Sprintf("range %s … %s; too few runs for a 95%% CI", units.Format(s.Min, s.Unit), units.Format(s.Max, s.Unit))
		case s.CILo == s.Min && s.CIHi == s.Max:
			// The fewest runs an interval can have: it spans them all.
			spread = fmt.Sprintf("range %s … %s, also its 95%% CI", units.Format(s.Min, s.Unit), units.Format(s.Max, s.Unit))
		}
		line := fmt.Sprintf("  %-18s %s  (%s; %d runs)", "Start to READY:", units.Format(s.Median, s.Unit), spread, s.N)
		if b, ok := a.Index.Single(a.Baseline, results.MetricStartup); ok && v != a.Baseline && b.Median > 0 {
			line += fmt.Sprintf("  %.1f× %s", s.Median/b.Median, a.Baseline)
		}
		fmt.Fprintln(w, line)
		if f := a.Index.Median(v, results.MetricStartFloor); f > 0 {
			fmt.Fprintf(w, "  %-18s %s (%s); the start is %.1f× it\n", "Floor:", units.Format(f, "sec"), "its driver's bare start, measured in this run", s.Median/f)
		}
	}
	stormLines(w, a.Storms(), v)
	densityLines(w, a.Index, v)
	sweepLine(w, a, v)
	headroomLines(w, a.Headrooms(), v)
	if mem := memoryLine(a.Index, v); mem != "" {
		fmt.Fprintf(w, "  %-18s %s\n", "Memory:", mem)
	}
	for _, l := range loadLines(a.Index, v) {
		fmt.Fprintf(w, "  %-18s %s\n", "Under load:", l)
	}
	var speeds []string
	for _, r := range a.Ratios {
		if r.Variant == v {
			speeds = append(speeds, fmt.Sprintf("%s %.3g× [%.3g-%.3g]", r.Metric, r.Value, r.Lo, r.Hi))
		}
	}
	if len(speeds) > 0 {
		fmt.Fprintf(w, "  %-18s %s\n", "Speed vs "+a.Baseline+":", strings.Join(speeds, ", "))
	}
}

// loadLines say, for each workload and instance count of variant that
// ran a load profile, what its windows achieved: rate, p99, errors, and
// how many windows met the objective.
func loadLines(x *analysis.Index, v string) []string {
	var out []string
	for _, p99 := range x.Of(v, results.MetricLoadP99) {
		of := func(metric string) (results.Summary, bool) {
			for _, s := range x.Of(v, metric) {
				if s.Workload == p99.Workload && s.Instances == p99.Instances {
					return s, true
				}
			}
			return results.Summary{}, false
		}
		line := fmt.Sprintf("%s ×%d: p99 %s", p99.Workload, p99.Instances, units.Format(p99.Median, p99.Unit))
		if s, ok := of(results.MetricLoadAchieved); ok {
			line += ", achieved " + units.Format(s.Median, s.Unit)
		}
		if s, ok := of(results.MetricLoadErrors); ok {
			line += fmt.Sprintf(", errors %.2f%%", s.Median)
		}
		if s, ok := of(results.MetricLoadSLOMet); ok {
			line += fmt.Sprintf("; objective met in %.0f of %d windows", s.Mean/100*float64(s.N), s.N)
		}
		out = append(out, line)
	}
	return out
}

// memoryLine says what one idle instance of variant holds: its PSS and
// the host's MemAvailable drop per instance (or that the drop is within
// the host's noise), and what its driver's daemons hold once.
func memoryLine(x *analysis.Index, v string) string {
	var parts []string
	if s, ok := x.Single(v, results.MetricPSS); ok {
		parts = append(parts, "PSS "+units.Format(s.Median, s.Unit))
	}
	if s, ok := x.Single(v, results.MetricHostMemDrop); ok {
		if bound, within := x.WithinNoise(s); within {
			parts = append(parts, "MemAvailable drop below the host's noise (±"+units.Format(bound, s.Unit)+")")
		} else {
			parts = append(parts, "MemAvailable drop "+units.Format(s.Median, s.Unit))
		}
	}
	if s, ok := x.Single(v, results.MetricDaemonPSS); ok {
		parts = append(parts, "its daemons' PSS "+units.Format(s.Median, s.Unit)+", held once whatever the instances")
	}
	return strings.Join(parts, "; ")
}

// hostLine says how fast and how quiet the host was, or "" where the run
// recorded no calibration.
func hostLine(h analysis.HostState) string {
	switch {
	case !h.Known:
		return ""
	case h.Quiet:
		return fmt.Sprintf("The host was quiet: %s SHA-256 operations per second on one core, %.1f%% of its CPU time stolen.", units.Format(h.CPUPerCore, ""), h.StealPercent)
	}
	return "The host was NOT quiet, so its figures may not hold for another host: " + strings.Join(h.Reasons, "; ") + "."
}
