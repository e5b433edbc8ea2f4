// Package stats describes a sample of values: its quantiles, the median's
// confidence interval (distribution-free, as benchstat computes it) and
// the Mann-Whitney U test between two samples. It knows numbers only: no
// keys, labels, units or vocabulary, in the shape of golang.org/x/perf's
// benchmath.
package stats

import (
	"fmt"
	"math"
	"sort"

	"golang.org/x/perf/benchmath"
	"gonum.org/v1/gonum/stat"
)

// Confidence is the confidence level of the median's interval.
const Confidence = 0.95

// MinSamples is the sample count below which a summary warns.
const MinSamples = 5

// HighCoV is the coefficient of variation above which a summary warns.
const HighCoV = 0.10

// Summary describes a sample of values.
type Summary struct {
	N      int
	Median float64
	P25    float64
	P75    float64
	P95    float64
	P99    float64
	Min    float64
	Max    float64
	Mean   float64
	StdDev float64
	// CoV is StdDev/Mean.
	CoV float64
	// CILo and CIHi bound the median at Confidence. With too few values
	// for an interval at that level (fewer than 6 at 95%) they are -Inf
	// and +Inf, as benchmath gives them: nothing can mistake them for an
	// interval (Range gives what the values support then).
	CILo, CIHi float64
	Confidence float64
	Warnings   []string
}

// HasInterval reports whether the median has a confidence interval.
func (s Summary) HasInterval() bool {
	return !math.IsInf(s.CILo, 0) && !math.IsInf(s.CIHi, 0) && s.N > 0
}

// Range returns the median's confidence interval where it has one, else
// the values' range: the widest the data support. Judgements that need a
// range (a ratio's, a capacity's) read it from here, saying which it is
// by HasInterval.
func (s Summary) Range() (lo, hi float64) {
	if s.HasInterval() {
		return s.CILo, s.CIHi
	}
	return s.Min, s.Max
}

// Describe computes the statistics of values (in any order).
func Describe(values []float64) Summary {
	s := Summary{N: len(values), Confidence: Confidence, CILo: math.Inf(-1), CIHi: math.Inf(1)}
	if len(values) == 0 {
		s.Warnings = append(s.Warnings, "no samples")
		return s
	}
	xs := append([]float64(nil), values...)
	sort.Float64s(xs)
	q := func(p float64) float64 { return quantile(xs, p) }
	s.Min, s.Max = xs[0], xs[len(xs)-1]
	s.P25, s.P75, s.P95, s.P99 = q(0.25), q(0.75), q(0.95), q(0.99)
	s.Mean = stat.Mean(xs, nil)
	if len(xs) > 1 {
		s.StdDev = stat.StdDev(xs, nil)
	}
	if s.Mean != 0 {
		s.CoV = math.Abs(s.StdDev / s.Mean)
	}
	bs := benchmath.AssumeNothing.Summary(benchmath.NewSample(xs, &benchmath.DefaultThresholds), Confidence)
	s.Median = bs.Center
	if !math.IsInf(bs.Lo, 0) && !math.IsInf(bs.Hi, 0) {
		// benchmath bounds one side only where the other cannot be had.
		s.CILo, s.CIHi = bs.Lo, bs.Hi
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

// Median returns the median of values (benchmath's center).
func Median(values []float64) float64 {
	return benchmath.AssumeNothing.Summary(benchmath.NewSample(append([]float64(nil), values...), &benchmath.DefaultThresholds), Confidence).Center
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
