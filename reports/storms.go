package reports

import (
	"fmt"
	"image/color"
	"io"
	"sort"
	"strconv"
	"strings"

	"virtbench/analysis"
	"virtbench/internal/units"

	"gonum.org/v1/plot/plotter"
)

// stormHeader heads the storm table.
var stormHeader = []string{"variant", "workload", "instances at once", "start p50", "start p99", "p50 against alone", "READY per second", "per core", "failed"}

// stormRows are the storm table's rows, one per variant, workload and
// count.
func stormRows(storms []analysis.Storm) [][]string {
	var rows [][]string
	for _, s := range storms {
		against := "-"
		if s.Alone > 0 {
			against = fmt.Sprintf("%.2f×", s.P50/s.Alone)
		}
		rate, perCore := "-", "-"
		if s.Rate > 0 {
			rate = fmt.Sprintf("%s [%s-%s]", units.Format(s.Rate, ""), units.Format(s.RateLo, ""), units.Format(s.RateHi, ""))
			perCore = units.Format(s.RatePerCore, "")
		}
		rows = append(rows, []string{s.Variant, s.Workload, strconv.Itoa(s.Instances), units.Format(s.P50, "sec"), units.Format(s.P99, "sec"),
			against, rate, perCore, fmt.Sprintf("%d of %d", s.Failed, s.Starts+s.Failed)})
	}
	return rows
}

// StormModel says what a storm measures and what to set it beside.
var StormModel = "A start storm starts every instance at once and measures each one's start to READY (p50 and p99 over every start of every repetition, against the variant started alone) and the storm's rate: the instances READY over the time from its first start to its last READY (median over the repetitions, with its range), and that per host CPU. Published anchors: " +
	strings.Join(analysis.StormAnchors, "; ") + "."

// stormLines writes variant's storms into its terminal block, one line
// per count.
func stormLines(w io.Writer, storms []analysis.Storm, v string) {
	for _, s := range storms {
		if s.Variant != v {
			continue
		}
		line := fmt.Sprintf("  %-18s p50 %s, p99 %s", fmt.Sprintf("Storm of %d:", s.Instances), units.Format(s.P50, "sec"), units.Format(s.P99, "sec"))
		if s.Alone > 0 && s.Instances > 1 {
			line += fmt.Sprintf(" (%.2f× alone)", s.P50/s.Alone)
		}
		if s.Rate > 0 {
			line += fmt.Sprintf("; %s READY per second, %s per core", units.Format(s.Rate, ""), units.Format(s.RatePerCore, ""))
		}
		if s.Failed > 0 {
			line += fmt.Sprintf("; %d failed", s.Failed)
		}
		fmt.Fprintln(w, line)
	}
}

// stormChart draws each variant's start latency against the storm's
// count: its median (solid) and 99th percentile (dashed); ok is false
// without storms.
func stormChart(storms []analysis.Storm, colors map[string]color.Color) (c Chart, ok bool, err error) {
	workloads := map[string]bool{}
	for _, s := range storms {
		workloads[s.Workload] = true
	}
	idx := map[string]int{}
	var p50, p99 []Curve
	for _, s := range storms {
		label := s.Variant
		if len(workloads) > 1 {
			label += " " + s.Workload
		}
		i, seen := idx[label]
		if !seen {
			i = len(p50)
			idx[label] = i
			p50 = append(p50, Curve{Label: label + " p50", Color: colors[s.Variant]})
			p99 = append(p99, Curve{Label: label + " p99", Color: colors[s.Variant], Dashed: true})
		}
		p50[i].XY = append(p50[i].XY, plotter.XY{X: float64(s.Instances), Y: s.P50})
		p99[i].XY = append(p99[i].XY, plotter.XY{X: float64(s.Instances), Y: s.P99})
	}
	if len(p50) == 0 {
		return Chart{}, false, nil
	}
	for _, cs := range [][]Curve{p50, p99} {
		for _, c := range cs {
			sort.Slice(c.XY, func(a, b int) bool { return c.XY[a].X < c.XY[b].X })
		}
	}
	c, err = LineChart(LineSpec{Name: "storm-latency", Title: "Start storms: start to READY against instances started at once (lower is better)",
		XLabel: "instances started at once", YLabel: "seconds", Unit: "sec", Curves: append(p50, p99...), LogY: true, LegendLeft: true})
	return c, err == nil, err
}
