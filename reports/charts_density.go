package reports

import (
	"fmt"
	"image/color"
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

// LineChart draws curves against the instance count on a log2 x axis; a
// horizontal line marks hline when it is not 0.
func LineChart(name, title, ylabel, unit string, curves []Curve, hline float64, hlabel string) (Chart, error) {
	p := newPlot()
	p.Title.Text = title
	p.X.Label.Text = "instances running"
	p.Y.Label.Text = ylabel
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = logTicks("")
	p.Legend.Top = true
	var xmax float64
	for i, c := range curves {
		if len(c.XY) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(c.XY)
		if err != nil {
			return Chart{}, fmt.Errorf("reports: %s chart: %w", name, err)
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
		return Chart{}, fmt.Errorf("reports: %s chart: no data", name)
	}
	if hline > 0 {
		floor, err := plotter.NewLine(plotter.XYs{{X: 1, Y: hline}, {X: xmax, Y: hline}})
		if err != nil {
			return Chart{}, fmt.Errorf("reports: %s chart: %w", name, err)
		}
		floor.Color = palette[3]
		floor.Dashes = []vg.Length{4, 4}
		p.Add(floor)
		p.Legend.Add(textsafe.XML(hlabel), floor)
	}
	p.Y.Min = 0
	// Headroom above the curves for the legend, one line per entry, so
	// that it sits off the data.
	entries := len(curves)
	if hline > 0 {
		entries++
	}
	p.Y.Max *= 1 + 0.09*float64(entries)
	return render(name, title, p, unit)
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
	if len(mem) == 0 {
		return nil, nil
	}
	// Each axis is in its metric's declared unit.
	specs := []struct {
		name, title, ylabel string
		curves              []Curve
		hline               float64
		hlabel              string
		metric              string
	}{
		{"density-memory", "Density: memory per instance (lower is better)", "bytes per instance", mem, 0, "", results.MetricDensityPSS},
		{"density-available", "Density: host MemAvailable", "bytes", curves(results.MetricDensityAvailable), densityFloor(x), "memory floor", results.MetricDensityAvailable},
		{"density-latency", "Density: start latency of the instances each step added, median (lower is better)", "seconds", curves(results.MetricDensityStartup), 0, "", results.MetricDensityStartup},
	}
	if cpu := curves(results.MetricDensityCPU); len(cpu) > 0 {
		specs = append(specs, struct {
			name, title, ylabel string
			curves              []Curve
			hline               float64
			hlabel              string
			metric              string
		}{"density-cpu", "Density: CPU one idle instance costs the host (lower is better)", "cores per instance", cpu, 0, "", results.MetricDensityCPU})
	}
	var out []Chart
	for _, sp := range specs {
		c, err := LineChart(sp.name, sp.title, sp.ylabel, x.Vocabulary().Kind(sp.metric).Unit, sp.curves, sp.hline, sp.hlabel)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
