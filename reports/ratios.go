package reports

import (
	"fmt"
	"io"
	"math"

	"golang.org/x/perf/benchmath"

	"virtbench/internal/results"
)

// Ratio is one workload result of a driver relative to the baseline
// (native) in the same run, turned so that above 1 means faster than native (a throughput
// divided by native's, or native's time divided by the driver's).
type Ratio struct {
	Driver   string  `json:"driver"`
	Workload string  `json:"workload"`
	Metric   string  `json:"metric"`
	Value    float64 `json:"ratio"`
	// Lo and Hi bound the ratio when each median may lie anywhere in its
	// 95% confidence interval, or, for a side with too few values for one,
	// anywhere between its smallest and largest value.
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
	// P is the Mann-Whitney U test's p-value for the driver's values
	// differing from native's; Same is P >= Alpha.
	P    float64 `json:"p"`
	Same bool    `json:"same_as_native"`
	// Note, where the driver beats native beyond the range, says which
	// differences in the setup could explain it (see explainFaster).
	Note string `json:"note,omitempty"`
}

// isPerfMetric reports whether a sample is a single instance's speed (its
// metric's kind is a speed: results.Kind.Speed).
func isPerfMetric(s results.Sample) bool {
	return s.Instances == 1 && results.KindOf(s.Metric).Speed()
}

// PerfRatios returns, for every workload result measured under the
// baseline variant and another, the other's ratio to the baseline, in the
// order the results were first seen; none without a baseline.
func PerfRatios(samples []results.Sample, baseline string) []Ratio {
	if baseline == "" {
		return nil
	}
	var perf []results.Sample
	for _, s := range samples {
		if isPerfMetric(s) {
			perf = append(perf, s)
		}
	}
	vals, _, order := samplesByKey(perf)
	var out []Ratio
	for _, k := range order {
		if k.Driver == baseline {
			continue
		}
		nk := k
		nk.Driver = baseline
		nat, ok := vals[nk]
		if !ok {
			continue
		}
		r := Ratio{Driver: k.Driver, Workload: k.Workload, Metric: k.Metric}
		if r.Value, r.Lo, r.Hi, ok = speedup(nat, vals[k], results.KindOf(k.Metric).Better == results.LowerIsBetter); !ok {
			continue
		}
		r.P, _ = results.MannWhitney(nat, vals[k])
		r.Same = r.P >= Alpha
		out = append(out, r)
	}
	return out
}

// speedup returns how much better other is than base (above 1: better;
// lower values are better when lower is set), from their medians, with the
// bounds their confidence intervals (or ranges) allow; ok is false when a
// median is 0.
func speedup(base, other []float64, lower bool) (value, lo, hi float64, ok bool) {
	n, nlo, nhi := bounds(benchmath.NewSample(base, &benchmath.DefaultThresholds))
	d, dlo, dhi := bounds(benchmath.NewSample(other, &benchmath.DefaultThresholds))
	if n == 0 || d == 0 {
		return 0, 0, 0, false
	}
	if lower {
		return n / d, nlo / dhi, nhi / dlo, true
	}
	return d / n, dlo / nhi, dhi / nlo, true
}

// bounds returns a sample's median and its confidence interval, or its
// range where the sample is too small for an interval.
func bounds(s *benchmath.Sample) (center, lo, hi float64) {
	sum := benchmath.AssumeNothing.Summary(s, results.Confidence)
	lo, hi = sum.Lo, sum.Hi
	if math.IsInf(lo, 0) || math.IsInf(hi, 0) || math.IsNaN(lo) || math.IsNaN(hi) {
		lo, hi = s.Values[0], s.Values[len(s.Values)-1] // sorted
	}
	return sum.Center, lo, hi
}

// ratioHeader is the header of the ratio tables.
var ratioHeader = []string{"driver", "workload", "metric", "vs native", "range", "p", "verdict"}

// ratioRows returns one formatted row per ratio.
func ratioRows(rs []Ratio) [][]string {
	var rows [][]string
	for _, r := range rs {
		verdict := "differs from native"
		if r.Same {
			verdict = "same as native"
		}
		rows = append(rows, []string{r.Driver, r.Workload, r.Metric, fmt.Sprintf("%.3f", r.Value),
			fmt.Sprintf("%.3f-%.3f", r.Lo, r.Hi), fmt.Sprintf("%.3f", r.P), verdict})
	}
	return rows
}

// fasterNotes returns, for each ratio where an isolated instance beats
// native beyond the range, one sentence with what could explain it.
func fasterNotes(rs []Ratio) []string {
	var out []string
	for _, r := range rs {
		if r.Note != "" {
			out = append(out, fmt.Sprintf("%s beats native on %s %s (%.2f× [%.2f-%.2f]): %s.", r.Driver, r.Workload, r.Metric, r.Value, r.Lo, r.Hi, r.Note))
		}
	}
	return out
}

// WriteRatios writes the ratios as a table for a terminal.
func WriteRatios(w io.Writer, rs []Ratio) error { return writeTextTable(w, ratioHeader, ratioRows(rs)) }

// WriteRatiosMarkdown writes the ratios as a Markdown table.
func WriteRatiosMarkdown(w io.Writer, rs []Ratio) error {
	return writeMarkdownTable(w, ratioHeader, ratioRows(rs))
}
