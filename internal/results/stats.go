package results

import (
	"fmt"
	"math"
	"sort"

	"golang.org/x/perf/benchmath"
	"gonum.org/v1/gonum/stat"
)

// Confidence is the confidence level of the median intervals.
const Confidence = 0.95

// MinSamples is the sample count below which a summary warns.
const MinSamples = 5

// HighCoV is the coefficient of variation above which a summary warns.
const HighCoV = 0.10

// Key identifies one summarised series.
type Key struct {
	Driver    string `json:"driver"`
	Workload  string `json:"workload"`
	Instances int    `json:"instances"`
	Metric    string `json:"metric"`
}

// Summary describes the measured (non-warmup, non-failed) samples of one key.
type Summary struct {
	Key
	Unit   string  `json:"unit"`
	N      int     `json:"n"`
	Failed int     `json:"failed"`
	Median float64 `json:"median"`
	P25    float64 `json:"p25"`
	P75    float64 `json:"p75"`
	P95    float64 `json:"p95"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Mean   float64 `json:"mean"`
	StdDev float64 `json:"stddev"`
	// CoV is StdDev/Mean.
	CoV float64 `json:"cov"`
	// CILo and CIHi bound the median at Confidence (distribution-free, as
	// benchstat computes it); Min and Max when n is too small for that.
	CILo       float64           `json:"ci_lo"`
	CIHi       float64           `json:"ci_hi"`
	Confidence float64           `json:"confidence"`
	Labels     map[string]string `json:"labels,omitempty"`
	Warnings   []string          `json:"warnings,omitempty"`
}

// Summarize groups samples by Key and summarises each group. Groups keep the
// order in which their first sample appears.
func Summarize(samples []Sample) []Summary {
	type group struct {
		unit   string
		values []float64
		failed int
		labels map[string]string
	}
	groups := map[Key]*group{}
	var order []Key
	for _, s := range samples {
		// An excluded trial's record is not a measurement: the reports
		// name it among the failures and warnings.
		if s.Warmup || s.Metric == MetricTrialExcluded {
			continue
		}
		k := Key{s.Driver, s.Workload, s.Instances, s.Metric}
		g := groups[k]
		if g == nil {
			g = &group{unit: s.Unit, labels: map[string]string{}}
			groups[k] = g
			order = append(order, k)
		}
		if s.Failed() {
			g.failed++
			continue
		}
		g.values = append(g.values, s.Value)
		for lk, lv := range s.Labels {
			if old, ok := g.labels[lk]; ok && old != lv {
				g.labels[lk] = old + "|" + lv
			} else if !ok {
				g.labels[lk] = lv
			}
		}
	}
	out := make([]Summary, 0, len(order))
	for _, k := range order {
		g := groups[k]
		s := Describe(g.values)
		if KindOf(k.Metric).Once {
			s.Warnings = nil
		}
		s.Key, s.Unit, s.Failed = k, g.unit, g.failed
		if len(g.labels) > 0 {
			s.Labels = g.labels
		}
		if g.failed > 0 {
			s.Warnings = append(s.Warnings, fmt.Sprintf("%d failed", g.failed))
		}
		out = append(out, s)
	}
	return out
}

// Describe computes the statistics of values (in any order).
func Describe(values []float64) Summary {
	s := Summary{N: len(values), Confidence: Confidence}
	if len(values) == 0 {
		s.Warnings = append(s.Warnings, "no samples")
		return s
	}
	xs := append([]float64(nil), values...)
	sort.Float64s(xs)
	q := func(p float64) float64 { return quantile(xs, p) }
	s.Min, s.Max = xs[0], xs[len(xs)-1]
	s.P25, s.P75, s.P95 = q(0.25), q(0.75), q(0.95)
	s.Mean = stat.Mean(xs, nil)
	if len(xs) > 1 {
		s.StdDev = stat.StdDev(xs, nil)
	}
	if s.Mean != 0 {
		s.CoV = math.Abs(s.StdDev / s.Mean)
	}
	bs := benchmath.AssumeNothing.Summary(benchmath.NewSample(xs, &benchmath.DefaultThresholds), Confidence)
	s.Median, s.CILo, s.CIHi = bs.Center, bs.Lo, bs.Hi
	if !finite(s.CILo) || !finite(s.CIHi) {
		// Too few values for an interval at Confidence (fewer than 6):
		// the range of the values is the widest the data support, and
		// the warning says the interval is weak.
		s.CILo, s.CIHi = s.Min, s.Max
	}
	if s.N < MinSamples {
		s.Warnings = append(s.Warnings, fmt.Sprintf("need >= %d samples, have %d", MinSamples, s.N))
	} else {
		for _, w := range bs.Warnings {
			s.Warnings = append(s.Warnings, w.Error())
		}
	}
	if s.CoV > HighCoV && s.N > 1 {
		s.Warnings = append(s.Warnings, fmt.Sprintf("high variation (CoV %.0f%%)", 100*s.CoV))
	}
	return s
}

func finite(v float64) bool { return !math.IsInf(v, 0) && !math.IsNaN(v) }

// quantile returns the p-quantile of sorted xs by linear interpolation
// between order statistics (R's type 7, numpy's default), so that p25 and
// p75 match what spreadsheets and numpy report.
func quantile(xs []float64, p float64) float64 {
	h := p * float64(len(xs)-1)
	lo := int(math.Floor(h))
	if lo+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[lo] + (h-float64(lo))*(xs[lo+1]-xs[lo])
}

// MannWhitney returns the two-sided p-value of the Mann-Whitney U test
// that a and b come from distributions with the same location (exact for
// small samples without ties, as benchstat computes it; 1 when it cannot
// be computed), and a warning when the samples are too small for any
// difference to be significant at the 0.05 level.
func MannWhitney(a, b []float64) (p float64, warning string) {
	sa := benchmath.NewSample(append([]float64(nil), a...), &benchmath.DefaultThresholds)
	sb := benchmath.NewSample(append([]float64(nil), b...), &benchmath.DefaultThresholds)
	c := benchmath.AssumeNothing.Compare(sa, sb)
	if len(c.Warnings) > 0 {
		warning = c.Warnings[0].Error()
	}
	return c.P, warning
}
