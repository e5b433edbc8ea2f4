package reports

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"virtbench/analysis"
	"virtbench/internal/results"
	"virtbench/internal/textsafe"
)

// Curve is one line of a density chart: y at each instance count.
type Curve struct {
	Label string
	XY    plotter.XYs
	// Color, when set, is the curve's colour (nil: picked by position);
	// Dashed draws it dashed.
	Color  color.Color
	Dashed bool
}

// DensityCurves returns, per driver that ran a density sweep, the curve of
// metric against the instance count (medians per step), sorted by count.
func DensityCurves(x *analysis.Index, metric string) []Curve {
	idx := map[string]int{}
	var out []Curve
	for _, s := range x.Metric(metric) {
		i, ok := idx[s.Variant]
		if !ok {
			i = len(out)
			idx[s.Variant] = i
			out = append(out, Curve{Label: s.Variant})
		}
		out[i].XY = append(out[i].XY, plotter.XY{X: float64(s.Instances), Y: s.Median})
	}
	for _, c := range out {
		sort.Slice(c.XY, func(a, b int) bool { return c.XY[a].X < c.XY[b].X })
	}
	return out
}

// densityFloor returns the MemAvailable floor a sweep used, or 0.
func densityFloor(x *analysis.Index) float64 {
	for _, s := range x.Metric(results.MetricDensityFloor) {
		return s.Median
	}
	return 0
}

// LineSpec describes a line chart of curves against an instance count.
type LineSpec struct {
	Name, Title string
	// XLabel says what the count is ("instances running"); YLabel and
	// Unit what the curves' values are.
	XLabel, YLabel, Unit string
	Curves               []Curve
	// HLine, when not 0, is a horizontal line marked HLabel.
	HLine  float64
	HLabel string
	// LogY draws the values on a log scale, for curves that span orders
	// of magnitude (a container's start beside a VM's).
	LogY bool
	// LegendLeft puts the legend at the top left, which curves that rise
	// with the count leave free: no room is made for it above them.
	LegendLeft bool
}

// errNoData says a chart has nothing to draw.
var errNoData = errors.New("no data")

// drawable returns the points of xy a chart can draw: on its log x axis,
// those of a count above 0, and on a log y axis those above 0 (a step
// whose every window failed has a median of 0).
func drawable(xy plotter.XYs, logY bool) plotter.XYs {
	var out plotter.XYs
	for _, p := range xy {
		if p.X > 0 && (!logY || p.Y > 0) {
			out = append(out, p)
		}
	}
	return out
}

// LineChart draws sp's curves against the instance count on a log2 x
// axis, leaving out the points it cannot draw (drawable); with none left
// its error wraps errNoData.
func LineChart(sp LineSpec) (Chart, error) {
	p := newPlot()
	p.Title.Text = sp.Title
	p.X.Label.Text = sp.XLabel
	p.Y.Label.Text = sp.YLabel
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = logTicks("")
	p.Legend.Top = true
	var xmax float64
	for i, c := range sp.Curves {
		c.XY = drawable(c.XY, sp.LogY)
		if len(c.XY) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(c.XY)
		if err != nil {
			return Chart{}, fmt.Errorf("reports: %s chart: %w", sp.Name, err)
		}
		col := c.Color
		if col == nil {
			col = palette[i%len(palette)]
		}
		l.Color, pts.Color = col, col
		if c.Dashed {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(l, pts)
		p.Legend.Add(textsafe.XML(c.Label), l, pts)
		xmax = max(xmax, c.XY[len(c.XY)-1].X)
	}
	if xmax == 0 {
		return Chart{}, fmt.Errorf("reports: %s chart: %w", sp.Name, errNoData)
	}
	if sp.HLine > 0 {
		floor, err := plotter.NewLine(plotter.XYs{{X: 1, Y: sp.HLine}, {X: xmax, Y: sp.HLine}})
		if err != nil {
			return Chart{}, fmt.Errorf("reports: %s chart: %w", sp.Name, err)
		}
		floor.Color = palette[3]
		floor.Dashes = []vg.Length{4, 4}
		p.Add(floor)
		p.Legend.Add(textsafe.XML(sp.HLabel), floor)
	}
	if sp.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks(sp.Unit)
	} else {
		p.Y.Min = 0
	}
	if sp.LegendLeft {
		p.Legend.Left = true
		return render(sp.Name, sp.Title, p, sp.Unit)
	}
	// Headroom above the curves for the legend, one line per entry, so
	// that it sits off the data.
	entries := len(sp.Curves)
	if sp.HLine > 0 {
		entries++
	}
	if sp.LogY && p.Y.Min > 0 && p.Y.Max > p.Y.Min {
		// The same share of the plot as on a linear axis, in decades.
		share := min(0.09*float64(entries), 0.5)
		p.Y.Max = p.Y.Min * math.Pow(p.Y.Max/p.Y.Min, 1/(1-share))
	} else if !sp.LogY {
		p.Y.Max *= 1 + 0.09*float64(entries)
	}
	return render(sp.Name, sp.Title, p, sp.Unit)
}

// densityCharts draws the density sweeps: memory per instance by both
// methods, MemAvailable against the floor, the start latency of each step
// and the CPU an idle instance costs, against the number of instances
// running.
func densityCharts(x *analysis.Index, colors map[string]color.Color) ([]Chart, error) {
	curves := func(metric string) []Curve {
		cs := DensityCurves(x, metric)
		for i := range cs {
			cs[i].Color = colors[cs[i].Label]
		}
		return cs
	}
	var mem []Curve
	for _, c := range curves(results.MetricDensityPSS) {
		c.Label += " PSS"
		mem = append(mem, c)
	}
	for _, c := range curves(results.MetricDensityMemDrop) {
		c.Label += " MemAvailable drop"
		c.Dashed = true
		mem = append(mem, c)
	}
	// Each axis is in its metric's declared unit.
	unit := func(metric string) string { return x.Vocabulary().Kind(metric).Unit }
	const running = "instances running"
	var specs []LineSpec
	if len(mem) > 0 {
		specs = append(specs,
			LineSpec{Name: "density-memory", Title: "Density: memory per instance (lower is better)", XLabel: running, YLabel: "bytes per instance", Unit: unit(results.MetricDensityPSS), Curves: mem},
			LineSpec{Name: "density-available", Title: "Density: host MemAvailable", XLabel: running, YLabel: "bytes", Unit: unit(results.MetricDensityAvailable), Curves: curves(results.MetricDensityAvailable), HLine: densityFloor(x), HLabel: "memory floor"},
			LineSpec{Name: "density-latency", Title: "Density: start latency of the instances each step added, median (lower is better)", XLabel: running, YLabel: "seconds", Unit: unit(results.MetricDensityStartup), Curves: curves(results.MetricDensityStartup)})
		if cpu := curves(results.MetricDensityCPU); len(cpu) > 0 {
			specs = append(specs, LineSpec{Name: "density-cpu", Title: "Density: CPU one idle instance costs the host (lower is better)", XLabel: running, YLabel: "cores per instance", Unit: unit(results.MetricDensityCPU), Curves: cpu})
		}
	}
	specs = append(specs, kneeSpecs(x, curves, unit)...)
	var out []Chart
	for _, sp := range specs {
		c, err := LineChart(sp)
		if errors.Is(err, errNoData) {
			continue // a sweep whose every step failed before it measured
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// kneeSpecs are the knee charts of the objective sweeps: each instance's
// p99 and achieved rate, medians per step, against the instances loaded
// at once, one line per variant, the objective drawn as a line.
func kneeSpecs(x *analysis.Index, curves func(metric string) []Curve, unit func(metric string) string) []LineSpec {
	p99 := curves(results.MetricLoadP99)
	if len(p99) == 0 || len(x.Metric(results.MetricObjectiveInstances)) == 0 {
		return nil
	}
	var bound, rate float64
	for _, s := range x.Metric(results.MetricObjectiveP99) {
		bound = s.Median
	}
	for _, s := range x.Metric(results.MetricObjectiveRate) {
		rate = s.Median
	}
	const loaded = "instances loaded at once"
	return []LineSpec{
		{Name: "knee-p99", Title: "Under load: each instance's p99 latency (median per step)", XLabel: loaded, YLabel: "seconds", Unit: unit(results.MetricLoadP99), Curves: p99, HLine: bound, HLabel: "objective", LogY: true},
		{Name: "knee-rate", Title: "Under load: each instance's achieved rate (median per step)", XLabel: loaded, YLabel: "requests per second", Unit: unit(results.MetricLoadAchieved), Curves: curves(results.MetricLoadAchieved), HLine: rate, HLabel: "offered"},
	}
}
