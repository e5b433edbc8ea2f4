package analysis

import (
	"virtbench/internal/results"
	"virtbench/internal/stats"
)

// Alpha is the significance level of comparisons, as in benchstat.
const Alpha = 0.05

// Ratio is one workload result of a variant relative to the baseline
// (native) in the same run, turned so that above 1 means faster than
// native (a throughput divided by native's, or native's time divided by
// the variant's).
type Ratio struct {
	Variant  string  `json:"variant"`
	Workload string  `json:"workload"`
	Metric   string  `json:"metric"`
	Value    float64 `json:"ratio"`
	// Lo and Hi bound the ratio when each median may lie anywhere in its
	// 95% confidence interval, or, for a side with too few values for one,
	// anywhere between its smallest and largest value.
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
	// P is the Mann-Whitney U test's p-value for the variant's values
	// differing from native's; Same is P >= Alpha.
	P    float64 `json:"p"`
	Same bool    `json:"same_as_native"`
	// Note, where the variant beats native beyond the range, says which
	// differences in the setup could explain it (see explainFaster); where
	// it falls behind, what in its storage does (storageNote).
	Note string `json:"note,omitempty"`
}

// PerfRatios returns, for every single instance's speed (its metric's
// kind is a speed) measured under the baseline variant and another, the
// other's ratio to the baseline, in the order the results were first
// measured; none without a baseline.
func PerfRatios(m *results.Measurements, v results.Vocabulary, baseline string) []Ratio {
	if baseline == "" {
		return nil
	}
	var out []Ratio
	for _, sr := range m.Series {
		k := v.Kind(sr.Metric)
		if sr.Variant == baseline || sr.Instances != 1 || !k.Speed() || len(sr.Values) == 0 {
			continue
		}
		bk := sr.Key
		bk.Variant = baseline
		base := m.Lookup(bk)
		if base == nil || len(base.Values) == 0 {
			continue
		}
		r := Ratio{Variant: sr.Variant, Workload: sr.Workload, Metric: sr.Metric}
		var ok bool
		if r.Value, r.Lo, r.Hi, ok = speedup(base.Values, sr.Values, k.Better == results.LowerIsBetter); !ok {
			continue
		}
		r.P, _ = stats.MannWhitney(base.Values, sr.Values)
		r.Same = r.P >= Alpha
		out = append(out, r)
	}
	return out
}

// speedup returns how much better other is than base (above 1: better;
// lower values are better when lower is set), from their medians, with the
// bounds their confidence intervals (or ranges: stats.Summary.Range)
// allow; ok is false when a median is 0.
func speedup(base, other []float64, lower bool) (value, lo, hi float64, ok bool) {
	bs, os := stats.Describe(base), stats.Describe(other)
	n, d := bs.Median, os.Median
	nlo, nhi := bs.Range()
	dlo, dhi := os.Range()
	if n == 0 || d == 0 {
		return 0, 0, 0, false
	}
	if lower {
		return n / d, nlo / dhi, nhi / dlo, true
	}
	return d / n, dlo / nhi, dhi / nlo, true
}
