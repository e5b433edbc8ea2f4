package analysis

import (
	"math"
	"sort"

	"virtbench/internal/results"
	"virtbench/internal/stats"
)

// Change is one metric compared between a baseline run and another run.
type Change struct {
	results.Key
	Unit string `json:"unit"`
	// Host is the host of the compared run.
	Host string `json:"host"`
	// Old and New are the medians.
	Old float64 `json:"old"`
	New float64 `json:"new"`
	// Delta is (New-Old)/Old.
	Delta float64 `json:"delta"`
	// P is the Mann-Whitney U test's p-value.
	P float64 `json:"p"`
	// Significant is P < Alpha.
	Significant bool `json:"significant"`
	// Regression is a significant change for the worse, and Improvement
	// one for the better, by the direction the metric's kind declares
	// (the run's vocabulary): slower, bigger or lower throughput is worse, a
	// density sweep reaching more instances or KSM saving more is better.
	// A metric of no direction (an amount such as guest RAM configured)
	// is neither, only Significant.
	Regression  bool `json:"regression"`
	Improvement bool `json:"improvement"`
	// Note explains a comparison that could not be made well.
	Note string `json:"note,omitempty"`
}

// Compare compares each later run with the first (the baseline), metric by
// metric, with the Mann-Whitney U test as benchstat does. The host's own
// samples (results.HostVariant: its MemAvailable noise) describe the host,
// not what ran on it, and are not compared.
//
// Each metric's direction is the baseline run's vocabulary's.
func Compare(runs []*Run) []Change {
	if len(runs) < 2 {
		return nil
	}
	base := runs[0].Measurements
	var out []Change
	for _, r := range runs[1:] {
		for _, bs := range base.Series {
			cs := r.Measurements.Lookup(bs.Key)
			if cs == nil || len(cs.Values) == 0 || len(bs.Values) == 0 || bs.Variant == results.HostVariant {
				continue
			}
			b, c := bs.Values, cs.Values
			ch := Change{Key: bs.Key, Unit: bs.Unit, Host: r.Provenance.Hostname}
			ch.Old, ch.New = stats.Median(b), stats.Median(c)
			if ch.Old != 0 {
				ch.Delta = (ch.New - ch.Old) / math.Abs(ch.Old)
			}
			ch.P, ch.Note = stats.MannWhitney(b, c)
			ch.Significant = ch.P < Alpha
			if ch.Significant && ch.Delta != 0 {
				switch runs[0].Vocabulary.Kind(bs.Metric).Better {
				case results.HigherIsBetter:
					ch.Regression, ch.Improvement = ch.Delta < 0, ch.Delta > 0
				case results.LowerIsBetter:
					ch.Regression, ch.Improvement = ch.Delta > 0, ch.Delta < 0
				}
			}
			out = append(out, ch)
		}
	}
	return out
}

// Regressions returns the significant regressions larger than pct percent,
// worst first.
func Regressions(changes []Change, pct float64) []Change {
	var out []Change
	for _, c := range changes {
		if c.Regression && math.Abs(c.Delta)*100 > pct {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return math.Abs(out[i].Delta) > math.Abs(out[j].Delta) })
	return out
}
