package reports

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"virtbench/bench"
)

// Chart is one rendered chart.
type Chart struct {
	// Name is the file name without extension, e.g. "startup".
	Name  string
	Title string
	SVG   []byte
	PNG   []byte
}

// Series is the data of one box or bar: a label and its values.
type Series struct {
	Label  string
	Values []float64
}

// MetricSeries returns, per driver in first-seen order, the measured values
// of metric for the given workload ("" for any workload).
func MetricSeries(samples []bench.Sample, metric, workload string) []Series {
	idx := map[string]int{}
	var out []Series
	for _, s := range samples {
		if s.Warmup || s.Failed() || s.Metric != metric || (workload != "" && s.Workload != workload) {
			continue
		}
		i, ok := idx[s.Driver]
		if !ok {
			i = len(out)
			idx[s.Driver] = i
			out = append(out, Series{Label: s.Driver})
		}
		out[i].Values = append(out[i].Values, s.Value)
	}
	return out
}

// palette colours the series of a chart.
var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
}

// BoxChart draws one box per series on a log scale when the values span more
// than a factor of 20, as startup times across drivers do.
func BoxChart(name, title, ylabel string, series []Series) (Chart, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	lo, hi := math.Inf(1), math.Inf(-1)
	var names []string
	for i, s := range series {
		if len(s.Values) == 0 {
			continue
		}
		vals := plotter.Values(s.Values)
		b, err := plotter.NewBoxPlot(vg.Points(30), float64(len(names)), vals)
		if err != nil {
			return Chart{}, fmt.Errorf("reports: %s chart: %w", name, err)
		}
		tableQuartiles(b)
		b.FillColor = palette[i%len(palette)]
		p.Add(b)
		names = append(names, s.Label)
		for _, v := range s.Values {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if len(names) == 0 {
		return Chart{}, fmt.Errorf("reports: %s chart: no data", name)
	}
	p.NominalX(names...)
	if lo > 0 && hi/lo > 20 {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Label.Text += " (log scale)"
	}
	return render(name, title, p)
}

// tableQuartiles makes a box show the quartiles the tables print (type 7,
// bench.Describe) instead of gonum's Tukey hinges, which differ for small
// samples, and recomputes the whiskers (1.5 IQR fences) from them.
func tableQuartiles(b *plotter.BoxPlot) {
	s := bench.Describe(b.Values)
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

// unitTicks labels a linear axis with values formatted in unit ("1.5MiB").
func unitTicks(unit string) plot.Ticker {
	return plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		ticks := plot.DefaultTicks{}.Ticks(lo, hi)
		for i := range ticks {
			if ticks[i].Label != "" {
				ticks[i].Label = FormatValue(ticks[i].Value, unit)
			}
		}
		return ticks
	})
}

// render draws p as SVG (fonts embedded) and PNG. A linear y axis whose
// label starts with "bytes" or "seconds" gets ticks in those units.
func render(name, title string, p *plot.Plot) (Chart, error) {
	if _, isLog := p.Y.Scale.(plot.LogScale); !isLog {
		switch {
		case strings.HasPrefix(p.Y.Label.Text, "bytes"):
			p.Y.Tick.Marker = unitTicks("B")
		case strings.HasPrefix(p.Y.Label.Text, "seconds"):
			p.Y.Tick.Marker = unitTicks("sec")
		}
	}
	const w, h = 6 * vg.Inch, 4 * vg.Inch
	svg := vgsvg.NewWith(vgsvg.UseWH(w, h), vgsvg.EmbedFonts(true))
	p.Draw(draw.New(svg))
	var sb bytes.Buffer
	if _, err := svg.WriteTo(&sb); err != nil {
		return Chart{}, fmt.Errorf("reports: %s chart svg: %w", name, err)
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
	return Chart{Name: name, Title: title, SVG: sb.Bytes(), PNG: pb.Bytes()}, nil
}

// Charts returns every chart the samples have data for.
func Charts(samples []bench.Sample) ([]Chart, error) {
	out, err := boxCharts(samples)
	if err != nil {
		return nil, err
	}
	sums := bench.Summarize(samples)
	bars := []struct {
		name, title, ylabel string
		data                Bars
		stacked             bool
	}{
		{"startup-phases", "Startup phases (medians)", "seconds", PhaseBars(sums), true},
		{"disk", "Disk for 10 instances: shared image once + writable layers", "bytes allocated", DiskBars(sums, 10), true},
		{"perf-ratio", "Workload speed relative to native (1 = native; bars: range from the 95% CIs)", "ratio", PerfBars(samples), false},
	}
	for _, b := range bars {
		if len(b.data.Labels) == 0 || len(b.data.Series) == 0 {
			continue
		}
		c, err := BarsChart(b.name, b.title, b.ylabel, b.data, b.stacked)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	dens, err := densityCharts(sums)
	if err != nil {
		return nil, err
	}
	return append(out, dens...), nil
}

// boxCharts draws the distributions of startup and teardown.
func boxCharts(samples []bench.Sample) ([]Chart, error) {
	var out []Chart
	specs := []struct{ name, title, ylabel, metric string }{
		{"startup", "Start to READY, per driver", "seconds", bench.MetricStartup},
		{"teardown", "Stop time, per driver", "seconds", bench.MetricTeardown},
		{"memory", "Memory per instance (PSS; RSS and USS in the tables)", "bytes", bench.MetricPSS},
	}
	for _, sp := range specs {
		series := MetricSeries(samples, sp.metric, "")
		if len(series) == 0 {
			continue
		}
		c, err := BoxChart(sp.name, sp.title, sp.ylabel, series)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
