package reports

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"virtbench/analysis"
	"virtbench/internal/results"
	"virtbench/internal/textsafe"
	"virtbench/internal/units"
)

// Bars is the data of a grouped or stacked bar chart: one group per
// label, one series per name.
type Bars struct {
	Labels []string
	Series []BarSeries
}

// BarSeries is one series of a bar chart; Lo and Hi, when set, are error
// bar bounds.
type BarSeries struct {
	Name           string
	Values, Lo, Hi []float64
	Color          color.Color // nil: picked by position
}

// PhaseBars splits the median startup of each variant that reports phases
// into the stages of results.Phases: the engine's create (docker), the
// instance's process up, a restore from a snapshot, the setup inside (a
// VM's guest boot, a container init's setup) and the agent to READY (the
// rest). Variants without phases are left out: their whole startup is one
// box in the startup chart.
func PhaseBars(x *analysis.Index) Bars {
	stages := []results.Stage{results.StageEngine, results.StageProcess, results.StageRestore, results.StageSetup, results.StageService}
	// metrics lists, per stage, the samples that measure it.
	metrics := map[results.Stage][]string{results.StageSetup: {results.MetricGuestBoot}}
	for _, p := range results.Phases {
		if p.Stage != results.StageAgent {
			metrics[p.Stage] = append(metrics[p.Stage], results.PhaseMetricPrefix+p.Name)
		}
	}
	var b Bars
	for _, d := range x.Variants(results.MetricStartup, true) {
		for _, st := range stages {
			for _, m := range metrics[st] {
				if x.Median(d, m) > 0 && !slices.Contains(b.Labels, d) {
					b.Labels = append(b.Labels, d)
				}
			}
		}
	}
	series := make([]BarSeries, len(stages)+1)
	for i, st := range stages {
		series[i].Name = st.String()
	}
	series[len(stages)].Name = results.StageAgent.String()
	for _, d := range b.Labels {
		total := x.Median(d, results.MetricStartup)
		used := 0.0
		for i, st := range stages {
			v := 0.0
			for _, m := range metrics[st] {
				v += x.Median(d, m)
			}
			v = min(v, max(total-used, 0))
			used += v
			series[i].Values = append(series[i].Values, v)
		}
		series[len(stages)].Values = append(series[len(stages)].Values, max(total-used, 0))
	}
	// Parts no variant has are left out of the legend.
	for _, s := range series {
		for _, v := range s.Values {
			if v > 0 {
				b.Series = append(b.Series, s)
				break
			}
		}
	}
	return b
}

// BootBars gives, per VM variant whose guest reported its boot stages,
// the time each stage took on the vCPU's time line (medians): before the
// kernel's clock started (firmware, decompression, early boot), then to
// each milestone the kernel logged, then from init to READY. A missing
// milestone's time goes to the next stage.
func BootBars(x *analysis.Index) Bars {
	var stages []struct{ metric, name string }
	for _, st := range results.BootStages {
		stages = append(stages, struct{ metric, name string }{results.BootMetricPrefix + st.Name, st.Doc})
	}
	stages = append(stages, struct{ metric, name string }{results.MetricGuestBoot, "to READY: the workload's start, or a full OS's init system"})
	var b Bars
	for _, d := range x.Variants(results.MetricGuestBoot, true) {
		if x.Median(d, results.BootMetricPrefix+results.BootStages[0].Name) > 0 {
			b.Labels = append(b.Labels, d)
		}
	}
	if len(b.Labels) == 0 {
		return b
	}
	b.Series = make([]BarSeries, len(stages))
	for i, st := range stages {
		b.Series[i].Name = st.name
	}
	for _, d := range b.Labels {
		prev := 0.0
		for i, st := range stages {
			at := x.Median(d, st.metric)
			v := 0.0
			if at > prev {
				v, prev = at-prev, at
			}
			b.Series[i].Values = append(b.Series[i].Values, v)
		}
	}
	return b
}

// PhaseShares turns PhaseBars into each part's share of its variant's
// start, in percent, so that a 10 ms container and a 2 s VM read alike;
// each label carries the variant's median start.
func PhaseShares(b Bars) Bars {
	out := Bars{Series: make([]BarSeries, len(b.Series))}
	for i, s := range b.Series {
		out.Series[i] = BarSeries{Name: s.Name, Color: s.Color, Values: make([]float64, len(s.Values))}
	}
	for j, l := range b.Labels {
		total := 0.0
		for _, s := range b.Series {
			total += s.Values[j]
		}
		out.Labels = append(out.Labels, fmt.Sprintf("%s (%s)", l, units.Format(total, "sec")))
		for i, s := range b.Series {
			if total > 0 {
				out.Series[i].Values[j] = 100 * s.Values[j] / total
			}
		}
	}
	return out
}

// DiskBars gives, per driver with an image, the shared image counted once,
// the tools layer and a service's image counted once where the run used
// them, and n instances' writable layers, allocated bytes.
func DiskBars(x *analysis.Index, n int) Bars {
	var b Bars
	shared := BarSeries{Name: "shared image (once)"}
	tools := BarSeries{Name: "tools layer (once)"}
	service := BarSeries{Name: "service's image (once)"}
	own := BarSeries{Name: fmt.Sprintf("writable layers (%d instances)", n)}
	for _, s := range x.Metric(results.MetricImageAllocated) {
		b.Labels = append(b.Labels, s.Variant)
		shared.Values = append(shared.Values, s.Median)
		tools.Values = append(tools.Values, x.Most(s.Variant, results.MetricToolsAllocated))
		service.Values = append(service.Values, x.Most(s.Variant, results.MetricServiceImageAllocated))
		own.Values = append(own.Values, float64(n)*x.Most(s.Variant, results.MetricWritableAllocated))
	}
	b.Series = []BarSeries{shared}
	for _, once := range []BarSeries{tools, service} {
		if slices.ContainsFunc(once.Values, func(v float64) bool { return v > 0 }) {
			b.Series = append(b.Series, once)
		}
	}
	b.Series = append(b.Series, own)
	return b
}

// PerfBars gives each workload result of each variant as speed relative
// to the baseline in the same run (above 1 is faster), with the bounds of
// the ratios (PerfRatios).
func PerfBars(rs []analysis.Ratio) Bars {
	var b Bars
	metric := map[string]int{} // label index
	series := map[string]*BarSeries{}
	var drivers []string
	for _, r := range rs {
		if _, ok := metric[r.Metric]; !ok {
			metric[r.Metric] = len(b.Labels)
			b.Labels = append(b.Labels, r.Metric)
		}
		if series[r.Variant] == nil {
			series[r.Variant] = &BarSeries{Name: r.Variant}
			drivers = append(drivers, r.Variant)
		}
	}
	for _, d := range drivers {
		s := series[d]
		s.Values, s.Lo, s.Hi = make([]float64, len(b.Labels)), make([]float64, len(b.Labels)), make([]float64, len(b.Labels))
	}
	for _, r := range rs {
		s, i := series[r.Variant], metric[r.Metric]
		s.Values[i], s.Lo[i], s.Hi[i] = r.Value, r.Lo, r.Hi
	}
	for _, d := range drivers {
		b.Series = append(b.Series, *series[d])
	}
	return b
}

// errBars are the error bars of one bar series.
type errBars struct {
	xs, ys, lo, hi []float64
}

func (e errBars) Len() int                        { return len(e.xs) }
func (e errBars) XY(i int) (float64, float64)     { return e.xs[i], e.ys[i] }
func (e errBars) YError(i int) (float64, float64) { return e.ys[i] - e.lo[i], e.hi[i] - e.ys[i] }

// BarsChart draws grouped (or, with stacked, stacked) bars. Groups sit at
// x = 0, 1, 2…; within a group, series are shifted in data units so that
// error bars land on their bars.
func BarsChart(name, title, ylabel, unit string, b Bars, stacked bool) (Chart, error) {
	if len(b.Labels) == 0 || len(b.Series) == 0 {
		return Chart{}, fmt.Errorf("reports: %s chart: no data", name)
	}
	p := newPlot()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs = vg.Points(10)
	n := len(b.Series)
	step := 0.8 / float64(n)
	w := vg.Points(40)
	if !stacked {
		w = vg.Points(max(2, 120/float64(n*len(b.Labels))))
	}
	var below *plotter.BarChart
	for i, s := range b.Series {
		bars, err := plotter.NewBarChart(plotter.Values(s.Values), w)
		if err != nil {
			return Chart{}, fmt.Errorf("reports: %s chart: %w", name, err)
		}
		bars.Color = s.Color
		if bars.Color == nil {
			bars.Color = palette[i%len(palette)]
		}
		bars.LineStyle.Width = 0
		shift := 0.0
		if stacked {
			if below != nil {
				bars.StackOn(below)
			}
			below = bars
		} else {
			shift = (float64(i) - float64(n-1)/2) * step
			bars.XMin = shift
		}
		p.Add(bars)
		p.Legend.Add(textsafe.XML(s.Name), bars)
		if len(s.Lo) == len(s.Values) && !stacked {
			e := errBars{ys: s.Values, lo: s.Lo, hi: s.Hi}
			for j := range s.Values {
				e.xs = append(e.xs, float64(j)+shift)
			}
			eb, err := plotter.NewYErrorBars(e)
			if err != nil {
				return Chart{}, fmt.Errorf("reports: %s chart: %w", name, err)
			}
			p.Add(eb)
		}
	}
	p.NominalX(safeTexts(b.Labels)...)
	p.X.Min, p.X.Max = -0.6, float64(len(b.Labels))-0.4
	if chars := len(strings.Join(b.Labels, "")); chars > 40 {
		// Labels that would run into each other slant.
		p.X.Tick.Label.Rotation = math.Pi / 8
		p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YCenter
	}
	p.Y.Min = 0
	// Headroom above the bars for the legend, one line per entry, so that
	// it sits off the data.
	p.Y.Max *= 1.1 + 0.09*float64(len(b.Series))
	return render(name, title, p, unit)
}
