package reports

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"virtbench/analysis"
	"virtbench/internal/results"
	"virtbench/internal/stats"
	"virtbench/internal/textsafe"
	"virtbench/internal/units"
)

// Chart is one rendered chart.
type Chart struct {
	// Name is the file name without extension, e.g. "startup".
	Name  string
	Title string
	// SVG is the chart's file, its fonts embedded; PageSVG the same chart
	// without them, for a page that styles its text (report.html).
	SVG, PageSVG []byte
	PNG          []byte
}

// Inline returns the chart's PageSVG without its XML prolog, to sit
// inline in an HTML page.
func (c Chart) Inline() template.HTML {
	svg := c.PageSVG
	if i := bytes.Index(svg, []byte("<svg")); i > 0 {
		svg = svg[i:]
	}
	return template.HTML(svg)
}

// Files returns the chart's files in a run (or fleet) directory: NAME.svg
// and NAME.png.
func (c Chart) Files() []results.File {
	return []results.File{{Name: c.Name + ".svg", Data: c.SVG}, {Name: c.Name + ".png", Data: c.PNG}}
}

// Series is the data of one box or bar: a label and its values, and its
// colour (nil: the chart picks one by position).
type Series struct {
	Label  string
	Values []float64
	Color  color.Color
}

// MetricSeries returns, per variant in first-measured order, the
// measured values of metric under any workload and instance count.
func MetricSeries(m *results.Measurements, metric string) []Series {
	idx := map[string]int{}
	var out []Series
	for _, sr := range m.Series {
		if sr.Metric != metric || len(sr.Values) == 0 {
			continue
		}
		i, ok := idx[sr.Variant]
		if !ok {
			i = len(out)
			idx[sr.Variant] = i
			out = append(out, Series{Label: sr.Variant})
		}
		out[i].Values = append(out[i].Values, sr.Values...)
	}
	return out
}

// palette colours the series of a chart.
var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
	color.RGBA{0xe3, 0x77, 0xc2, 0xff}, color.RGBA{0x7f, 0x7f, 0x7f, 0xff}, color.RGBA{0xbc, 0xbd, 0x22, 0xff},
	color.RGBA{0x17, 0xbe, 0xcf, 0xff},
}

// BoxChart draws one box per series, on a log scale when the values span
// more than a factor of 20, as startup times across drivers do. Axes are
// in the unit the y label starts with (seconds, bytes), log axes ticked at
// 1-2-5 steps; no box touches the plot's edge; a series of at most
// DotsMax values also shows every value as a dot beside its box.
func BoxChart(name, title, ylabel, unit string, series []Series) (Chart, error) {
	p := newPlot()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	lo, hi := math.Inf(1), math.Inf(-1)
	var names []string
	for i, s := range series {
		if len(s.Values) == 0 {
			continue
		}
		x := float64(len(names))
		vals := plotter.Values(s.Values)
		b, err := plotter.NewBoxPlot(vg.Points(30), x, vals)
		if err != nil {
			return Chart{}, fmt.Errorf("reports: %s chart: %w", name, err)
		}
		tableQuartiles(b)
		c := s.Color
		if c == nil {
			c = palette[i%len(palette)]
		}
		b.FillColor = c
		p.Add(b)
		if len(s.Values) <= DotsMax {
			dots := make(plotter.XYs, len(s.Values))
			for j, v := range s.Values {
				dots[j] = plotter.XY{X: x + 0.32, Y: v}
			}
			sc, err := plotter.NewScatter(dots)
			if err != nil {
				return Chart{}, fmt.Errorf("reports: %s chart: %w", name, err)
			}
			sc.GlyphStyle.Color, sc.GlyphStyle.Radius, sc.GlyphStyle.Shape = c, vg.Points(2), draw.CircleGlyph{}
			p.Add(sc)
		}
		names = append(names, s.Label)
		for _, v := range s.Values {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if len(names) == 0 {
		return Chart{}, fmt.Errorf("reports: %s chart: no data", name)
	}
	p.NominalX(safeTexts(names)...)
	p.X.Min, p.X.Max = -0.6, float64(len(names))-0.4
	if len(names) > 6 {
		p.X.Tick.Label.Rotation = math.Pi / 6
		p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YCenter
	}
	if lo > 0 && hi/lo > 20 {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks(unit)
		p.Y.Label.Text += " (log scale)"
		p.Y.Min, p.Y.Max = lo/1.5, hi*1.5
	} else {
		pad := 0.08 * (hi - lo)
		if pad == 0 {
			pad = 0.05 * math.Abs(hi)
		}
		p.Y.Min, p.Y.Max = math.Max(0, lo-pad), hi+pad
		if lo-pad < 0 && lo < 0 {
			p.Y.Min = lo - pad
		}
	}
	return render(name, title, p, unit)
}

// DotsMax is the most values a box chart shows as dots beside a box.
const DotsMax = 20

// logTicks labels a log axis at 1, 2 and 5 times each power of ten, in
// unit ("" for plain numbers), with unlabelled minor ticks between; bytes
// at powers of two (1, 2, 4 … MiB).
func logTicks(unit string) plot.Ticker {
	return plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		var ticks []plot.Tick
		if lo <= 0 || hi <= lo {
			return plot.LogTicks{Prec: -1}.Ticks(lo, hi)
		}
		if unit == "B" {
			first, last := math.Ceil(math.Log2(lo)), math.Floor(math.Log2(hi))
			every := math.Max(1, math.Ceil((last-first+1)/10))
			for e := first; e <= last; e++ {
				t := plot.Tick{Value: math.Pow(2, e)}
				if math.Mod(e-first, every) == 0 {
					t.Label = formatTick(t.Value, unit)
				}
				ticks = append(ticks, t)
			}
			return ticks
		}
		for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
			for m := 1; m <= 9; m++ {
				v := float64(m) * math.Pow(10, e)
				if v < lo || v > hi {
					continue
				}
				t := plot.Tick{Value: v}
				if m == 1 || m == 2 || m == 5 {
					t.Label = formatTick(v, unit)
				}
				ticks = append(ticks, t)
			}
		}
		return ticks
	})
}

// formatTick writes a tick's value in unit without trailing zeros
// ("4MiB", "2.5ms"), or as a plain number.
func formatTick(v float64, unit string) string {
	f := units.Format(v, unit)
	end := strings.IndexFunc(f, func(r rune) bool { return (r < '0' || r > '9') && r != '.' && r != '-' })
	if end < 0 {
		end = len(f)
	}
	num := f[:end]
	if strings.Contains(num, ".") {
		num = strings.TrimRight(strings.TrimRight(num, "0"), ".")
	}
	return num + f[end:]
}

// tableQuartiles makes a box show the quartiles the tables print (type 7,
// stats.Describe) instead of gonum's Tukey hinges, which differ for small
// samples, and recomputes the whiskers (1.5 IQR fences) from them.
func tableQuartiles(b *plotter.BoxPlot) {
	s := stats.Describe(b.Values)
	b.Median, b.Quartile1, b.Quartile3 = s.Median, s.P25, s.P75
	iqr := b.Quartile3 - b.Quartile1
	low, high := b.Quartile1-1.5*iqr, b.Quartile3+1.5*iqr
	b.AdjLow, b.AdjHigh, b.Outside = math.Inf(1), math.Inf(-1), nil
	for i, v := range b.Values {
		if v < low || v > high {
			b.Outside = append(b.Outside, i)
			continue
		}
		b.AdjLow, b.AdjHigh = math.Min(b.AdjLow, v), math.Max(b.AdjHigh, v)
	}
}

// linearTicks labels a linear axis at round steps of the unit shown, with
// no trailing zeros: bytes at powers of two (0, 64MiB, 128MiB …), other
// units at 1, 2 or 5 times a power of ten (0, 1s, 2s …; 0, 0.5, 1 …);
// five to seven labels.
func linearTicks(unit string) plot.Ticker {
	return plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		if !(hi > lo) || math.IsInf(hi-lo, 0) {
			return plot.DefaultTicks{}.Ticks(lo, hi)
		}
		step := tickStep((hi-lo)/7, unit == "B")
		var ticks []plot.Tick
		for i := math.Ceil(lo / step); i*step <= hi*(1+1e-9); i++ {
			v := i * step
			ticks = append(ticks, plot.Tick{Value: v, Label: formatTick(v, unit)})
		}
		return ticks
	})
}

// tickStep returns the round step nearest above raw: a power of two for
// binary units, else 1, 2 or 5 times a power of ten.
func tickStep(raw float64, binary bool) float64 {
	if binary {
		return math.Pow(2, math.Ceil(math.Log2(raw)))
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// newPlot returns a plot whose text is set in Liberation Sans, the sans
// face the report's page uses (report.html styles chart text with the
// same, metric-compatible, stack).
func newPlot() *plot.Plot {
	p := plot.New()
	sans := func(s *text.Style) { s.Font.Typeface, s.Font.Variant = "Liberation", "Sans" }
	for _, s := range []*text.Style{&p.Title.TextStyle, &p.X.Label.TextStyle, &p.Y.Label.TextStyle, &p.X.Tick.Label, &p.Y.Tick.Label, &p.Legend.TextStyle} {
		sans(s)
	}
	p.Legend.TextStyle.Font.Size = vg.Points(9) // as small as the ticks': the legend is no heading
	return p
}

// safeTexts returns names as XML may hold them (textsafe.XML): a chart's
// labels come from the run directory.
func safeTexts(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = textsafe.XML(n)
	}
	return out
}

// render draws p as SVG (fonts embedded, and again for the page: without
// them, and without the title, which the page sets above the chart) and
// PNG. A linear y axis gets ticks at round steps of unit.
func render(name, title string, p *plot.Plot, unit string) (Chart, error) {
	if _, isLog := p.Y.Scale.(plot.LogScale); !isLog {
		p.Y.Tick.Marker = linearTicks(unit)
	}
	const w, h = 6 * vg.Inch, 4 * vg.Inch
	c := Chart{Name: name, Title: title}
	title = textsafe.XML(title)
	p.X.Label.Text, p.Y.Label.Text = textsafe.XML(p.X.Label.Text), textsafe.XML(p.Y.Label.Text)
	for _, embed := range []bool{false, true} {
		p.Title.Text = ""
		if embed {
			p.Title.Text = title
		}
		svg := vgsvg.NewWith(vgsvg.UseWH(w, h), vgsvg.EmbedFonts(embed))
		p.Draw(draw.New(svg))
		var sb bytes.Buffer
		if _, err := svg.WriteTo(&sb); err != nil {
			return Chart{}, fmt.Errorf("reports: %s chart svg: %w", name, err)
		}
		if embed {
			c.SVG = sb.Bytes()
		} else {
			c.PageSVG = sb.Bytes()
		}
	}
	img := vgimg.New(w, h)
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	p.Draw(dc)
	var pb bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&pb); err != nil {
		return Chart{}, fmt.Errorf("reports: %s chart png: %w", name, err)
	}
	c.PNG = pb.Bytes()
	return c, nil
}

// Charts returns every chart an analysis has data for: distributions of
// the measurements, the summaries' bars and curves, the ratios to the
// baseline variant and what each density sweep reached beside the model's
// count.
func Charts(a *analysis.Analysis) ([]Chart, error) {
	colors := variantColors(a.Index)
	out, err := boxCharts(a.Run.Measurements, a.Index.Vocabulary(), colors)
	if err != nil {
		return nil, err
	}
	x, ratios, baseline := a.Index, a.Ratios, a.Baseline
	type barSpec struct {
		name, title, ylabel, unit string
		data                      Bars
		stacked                   bool
	}
	bars := []barSpec{
		{"startup-phases", "Where the start goes: each phase's share of the median start to READY", "percent of the start", "", PhaseShares(PhaseBars(x)), true},
		{"boot-timeline", "Guest boot timeline on the vCPU's clock (medians)", "seconds", "sec", BootBars(x), true},
		{"disk", "Disk for 10 instances, shared layers once (lower is better)", "bytes allocated", "B", DiskBars(x, 10), true},
	}
	for _, g := range perfGroups(ratios, x.Vocabulary()) {
		perf := PerfBars(g.ratios)
		for i := range perf.Series {
			perf.Series[i].Color = colors[perf.Series[i].Name]
		}
		title := fmt.Sprintf("Workload speed relative to %[1]s (1 = %[1]s; higher is better)", baseline)
		if g.dimension != "" {
			title = fmt.Sprintf("Speed relative to %[1]s: %[2]s (1 = %[1]s; higher is better)", baseline, g.dimension)
		}
		bars = append(bars, barSpec{g.name, title, "ratio", "", perf, false})
	}
	bars = append(bars, barSpec{"density-reach", "Density: instances each sweep reached, and the model's count", "instances", "instances", ReachBars(a.Sweeps), false})
	for _, b := range bars {
		if len(b.data.Labels) == 0 || len(b.data.Series) == 0 {
			continue
		}
		c, err := BarsChart(b.name, b.title, b.ylabel, b.unit, b.data, b.stacked)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if c, ok, err := stormChart(a.Storms(), colors); err != nil {
		return nil, err
	} else if ok {
		out = append(out, c)
	}
	dens, err := densityCharts(x, colors)
	if err != nil {
		return nil, err
	}
	return append(out, dens...), nil
}

// perfChartLabels is the most results one perf-ratio chart shows; a run
// with more gets a chart per dimension of performance.
const perfChartLabels = 12

// perfGroup is the ratios one perf-ratio chart shows.
type perfGroup struct {
	name      string // "perf-ratio", or "perf-ratio-" and the dimension
	dimension string // "" for the chart of every result
	ratios    []analysis.Ratio
}

// perfGroups splits the ratios into the perf-ratio charts: one chart
// while the results fit, else one per dimension in analysis.PerfDimensions' order,
// the results of none (latencies, counts) last as "other".
func perfGroups(ratios []analysis.Ratio, voc results.Vocabulary) []perfGroup {
	metrics := map[string]bool{}
	for _, r := range ratios {
		metrics[r.Metric] = true
	}
	if len(metrics) <= perfChartLabels {
		return []perfGroup{{name: "perf-ratio", ratios: ratios}}
	}
	var out []perfGroup
	for _, d := range append(slices.Clone(analysis.PerfDimensions), results.NoDimension) {
		g := perfGroup{name: "perf-ratio-" + strings.ToLower(strings.ReplaceAll(string(d), " ", "-")), dimension: string(d)}
		if d == results.NoDimension {
			g.name, g.dimension = "perf-ratio-other", "latencies and other results"
		}
		for _, r := range ratios {
			if voc.Kind(r.Metric).Dimension == d {
				g.ratios = append(g.ratios, r)
			}
		}
		if len(g.ratios) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// variantColors gives each variant of a run one colour for every chart,
// in the order the variants were first measured.
func variantColors(x *analysis.Index) map[string]color.Color {
	out := map[string]color.Color{}
	for _, s := range x.Summaries {
		if _, ok := out[s.Variant]; !ok {
			out[s.Variant] = palette[len(out)%len(palette)]
		}
	}
	return out
}

// boxCharts draws the distributions of startup, teardown and memory.
func boxCharts(m *results.Measurements, voc results.Vocabulary, colors map[string]color.Color) ([]Chart, error) {
	var out []Chart
	// Each axis is in its metric's declared unit.
	specs := []struct{ name, title, ylabel, metric string }{
		{"startup", "Start to READY, per variant (lower is better)", "seconds", results.MetricStartup},
		{"teardown", "Stop time, per variant (lower is better)", "seconds", results.MetricTeardown},
		{"memory", "Memory per instance, PSS (lower is better)", "bytes", results.MetricPSS},
	}
	for _, sp := range specs {
		series := MetricSeries(m, sp.metric)
		if len(series) == 0 {
			continue
		}
		for i := range series {
			series[i].Color = colors[series[i].Label]
		}
		c, err := BoxChart(sp.name, sp.title, sp.ylabel, voc.Kind(sp.metric).Unit, series)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
