package results

import (
	"encoding/json"
	"fmt"
	"math"

	"virtbench/internal/stats"
)

// Key identifies one summarised series: a variant's metric at an
// instance count, under a workload.
type Key struct {
	Variant   string `json:"variant"`
	Workload  string `json:"workload"`
	Instances int    `json:"instances"`
	Metric    string `json:"metric"`
}

// Summary describes the measured (non-warmup, non-failed) samples of one
// key: their statistics (stats.Summary), their unit, how many failed and
// the labels they carried.
type Summary struct {
	Key
	Unit   string
	Failed int
	stats.Summary
	Labels map[string]string
}

// summaryJSON is a Summary as summary.json writes it: the interval's
// bounds are null where there is none (stats.Summary's ±Inf).
type summaryJSON struct {
	Key
	Unit       string            `json:"unit"`
	N          int               `json:"n"`
	Failed     int               `json:"failed"`
	Median     float64           `json:"median"`
	P25        float64           `json:"p25"`
	P75        float64           `json:"p75"`
	P95        float64           `json:"p95"`
	P99        float64           `json:"p99"`
	Min        float64           `json:"min"`
	Max        float64           `json:"max"`
	Mean       float64           `json:"mean"`
	StdDev     float64           `json:"stddev"`
	CoV        float64           `json:"cov"`
	CILo       *float64          `json:"ci_lo"`
	CIHi       *float64          `json:"ci_hi"`
	Confidence float64           `json:"confidence"`
	Labels     map[string]string `json:"labels,omitempty"`
	Warnings   []string          `json:"warnings,omitempty"`
}

// MarshalJSON writes s as summary.json holds it.
func (s Summary) MarshalJSON() ([]byte, error) {
	j := summaryJSON{Key: s.Key, Unit: s.Unit, N: s.N, Failed: s.Failed, Median: s.Median, P25: s.P25, P75: s.P75, P95: s.P95, P99: s.P99,
		Min: s.Min, Max: s.Max, Mean: s.Mean, StdDev: s.StdDev, CoV: s.CoV, Confidence: s.Confidence, Labels: s.Labels, Warnings: s.Warnings}
	if s.HasInterval() {
		j.CILo, j.CIHi = &s.CILo, &s.CIHi
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (s *Summary) UnmarshalJSON(b []byte) error {
	var j summaryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Summary{Key: j.Key, Unit: j.Unit, Failed: j.Failed, Labels: j.Labels, Summary: stats.Summary{N: j.N, Median: j.Median, P25: j.P25, P75: j.P75, P95: j.P95, P99: j.P99,
		Min: j.Min, Max: j.Max, Mean: j.Mean, StdDev: j.StdDev, CoV: j.CoV, CILo: math.Inf(-1), CIHi: math.Inf(1), Confidence: j.Confidence, Warnings: j.Warnings}}
	if j.CILo != nil && j.CIHi != nil {
		s.CILo, s.CIHi = *j.CILo, *j.CIHi
	}
	return nil
}

// Summarize groups samples by Key and summarises each group, as v
// declares their metrics, leaving out warmups and excluded trials (see
// Measurements). Groups keep the order in which their first sample
// appears.
func Summarize(samples []Sample, v Vocabulary) []Summary {
	return MeasurementsOf(samples).Summarize(v)
}

// summarize describes one series.
func summarize(sr *Series, v Vocabulary) Summary {
	s := Summary{Key: sr.Key, Unit: sr.Unit, Failed: sr.Failed, Summary: stats.Describe(sr.Values), Labels: sr.Labels}
	if v.Kind(sr.Metric).Once {
		s.Warnings = nil
	}
	if sr.Failed > 0 {
		s.Warnings = append(s.Warnings, fmt.Sprintf("%d failed", sr.Failed))
	}
	return s
}
