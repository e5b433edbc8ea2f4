package analysis

import (
	"slices"

	"virtbench/internal/results"
)

// Index holds a run's summaries, computed once from its measurements, with
// the named lookups every judgement and every figure uses: so that "the
// startup of an idle instance" means one summary wherever it is read.
type Index struct {
	// Summaries are every series' summary, in the order each series was
	// first measured.
	Summaries []results.Summary
	vocab     results.Vocabulary
	// byVariant maps a variant's metric to its summaries with samples
	// measured, in order.
	byVariant map[variantMetric][]int
	// variants are the variants with a summary, in order.
	variants []string
}

type variantMetric struct{ variant, metric string }

// NewIndex indexes sums, whose names v declares.
func NewIndex(sums []results.Summary, v results.Vocabulary) *Index {
	x := &Index{Summaries: sums, vocab: v, byVariant: map[variantMetric][]int{}}
	for i, s := range sums {
		if !slices.Contains(x.variants, s.Variant) {
			x.variants = append(x.variants, s.Variant)
		}
		if s.N > 0 {
			k := variantMetric{s.Variant, s.Metric}
			x.byVariant[k] = append(x.byVariant[k], i)
		}
	}
	return x
}

// Of returns variant's measured summaries of metric, in order.
func (x *Index) Of(variant, metric string) []results.Summary {
	var out []results.Summary
	for _, i := range x.byVariant[variantMetric{variant, metric}] {
		out = append(out, x.Summaries[i])
	}
	return out
}

// Single returns the summary of metric of one idle instance of variant
// (the baseline workload, one instance at a time), else of the first
// single instance of another workload with a median other than 0: what
// "variant's startup" or "its PSS" means.
func (x *Index) Single(variant, metric string) (results.Summary, bool) {
	var fallback results.Summary
	for _, s := range x.Of(variant, metric) {
		if s.Instances != 1 {
			continue
		}
		if x.vocab.BaselineWorkload(s.Workload) {
			return s, true
		}
		if fallback.Median == 0 {
			fallback = s
		}
	}
	return fallback, fallback.N > 0
}

// Idle returns the summary of variant's metric on the baseline workload
// with the most instances at a time, minInstances at least.
func (x *Index) Idle(variant, metric string, minInstances int) (results.Summary, bool) {
	var best results.Summary
	for _, s := range x.Of(variant, metric) {
		if x.vocab.BaselineWorkload(s.Workload) && s.Instances >= minInstances && s.Instances > best.Instances {
			best = s
		}
	}
	return best, best.N > 0
}

// Largest returns the summary of variant's metric at its largest instance
// count (a density sweep's last step), any workload.
func (x *Index) Largest(variant, metric string) (results.Summary, bool) {
	var best results.Summary
	for _, s := range x.Of(variant, metric) {
		if s.Instances > best.Instances {
			best = s
		}
	}
	return best, best.N > 0
}

// Most returns the largest median of variant's metric under any workload
// and instance count (a writable layer's most), 0 where there is none.
func (x *Index) Most(variant, metric string) float64 {
	var v float64
	for _, s := range x.Of(variant, metric) {
		v = max(v, s.Median)
	}
	return v
}

// Least returns, among every variant's summary of metric for one idle
// instance (the baseline workload, one at a time), the one with the least
// median: the fastest start, the smallest memory.
func (x *Index) Least(metric string) (results.Summary, bool) {
	var best results.Summary
	for _, s := range x.Metric(metric) {
		if s.Instances == 1 && x.vocab.BaselineWorkload(s.Workload) && (best.N == 0 || s.Median < best.Median) {
			best = s
		}
	}
	return best, best.N > 0
}

// Median returns Single's median, 0 where there is none.
func (x *Index) Median(variant, metric string) float64 {
	s, _ := x.Single(variant, metric)
	return s.Median
}

// Variants returns the variants with a measured summary of metric
// (single instances only where single is set), in the order of their
// first such summary.
func (x *Index) Variants(metric string, single bool) []string {
	return x.variantsOf(func(s results.Summary) bool { return s.Metric == metric && (!single || s.Instances == 1) })
}

// Started returns the variants with a start, a start storm or a density
// sweep measured, in the order they first appear.
func (x *Index) Started() []string {
	return x.variantsOf(func(s results.Summary) bool {
		return s.Metric == results.MetricStartup || s.Metric == results.MetricStormStartup || s.Metric == results.MetricDensityReached
	})
}

// variantsOf returns the variants of the measured summaries that keep,
// each once, in order.
func (x *Index) variantsOf(keep func(results.Summary) bool) []string {
	var out []string
	for _, s := range x.Summaries {
		if s.N > 0 && keep(s) && !slices.Contains(out, s.Variant) {
			out = append(out, s.Variant)
		}
	}
	return out
}

// Metric returns every measured summary of metric, in the order the
// series were first measured.
func (x *Index) Metric(metric string) []results.Summary {
	var out []results.Summary
	for _, s := range x.Summaries {
		if s.Metric == metric && s.N > 0 {
			out = append(out, s)
		}
	}
	return out
}

// HostNoise returns the host's MemAvailable noise as the run measured it
// (results.MetricHostMemNoise): 0 where it did not.
func (x *Index) HostNoise() float64 {
	for _, s := range x.Metric(results.MetricHostMemNoise) {
		return s.Max
	}
	return 0
}

// WithinNoise reports whether s is a MemAvailable drop per instance
// within the host's noise, and the noise per instance: the host's noise
// divided by the instances of the trial, whose drop was divided by them.
func (x *Index) WithinNoise(s results.Summary) (float64, bool) {
	n := x.HostNoise()
	if n <= 0 || s.N == 0 || s.Metric != results.MetricHostMemDrop || s.Instances < 1 {
		return 0, false
	}
	bound := n / float64(s.Instances)
	return bound, abs(s.Median) < bound
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// Vocabulary returns the meaning of the indexed run's names.
func (x *Index) Vocabulary() results.Vocabulary { return x.vocab }
