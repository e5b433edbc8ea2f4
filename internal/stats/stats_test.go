package stats

import (
	"math"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		median float64
		p25    float64
		p75    float64
		warn   string
	}{
		{"odd", []float64{105, 101, 103, 102, 104, 100, 106}, 103, 101.5, 104.5, ""},
		{"even", []float64{101, 102, 103, 104, 105, 106}, 103.5, 102.25, 104.75, ""},
		{"few", []float64{1, 2}, 1.5, 1.25, 1.75, "need >= 5 samples"},
		{"noisy", []float64{1, 10, 1, 10, 1, 10, 1}, 1, 1, 10, "high variation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Describe(tt.values)
			if s.N != len(tt.values) || s.Median != tt.median || s.P25 != tt.p25 || s.P75 != tt.p75 {
				t.Errorf("Describe(%v) = n %d median %v p25 %v p75 %v; want median %v p25 %v p75 %v",
					tt.values, s.N, s.Median, s.P25, s.P75, tt.median, tt.p25, tt.p75)
			}
			if lo, hi := s.Range(); lo > s.Median || hi < s.Median {
				t.Errorf("CI [%v, %v] does not contain the median %v", s.CILo, s.CIHi, s.Median)
			}
			joined := strings.Join(s.Warnings, "; ")
			if (tt.warn == "") != (joined == "") || !strings.Contains(joined, tt.warn) {
				t.Errorf("warnings %q, want %q", joined, tt.warn)
			}
		})
	}
}

func TestDescribeStats(t *testing.T) {
	s := Describe([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	if s.Mean != 5 || math.Abs(s.StdDev-2.138) > 0.001 || s.Min != 2 || s.Max != 9 || math.Abs(s.CoV-0.4276) > 0.001 {
		t.Errorf("Describe = mean %v sd %v min %v max %v cov %v", s.Mean, s.StdDev, s.Min, s.Max, s.CoV)
	}
}

// TestMannWhitneyKnownAnswers checks p-values against SciPy 1.10's
// scipy.stats.mannwhitneyu(x, y, alternative="two-sided", method="exact")
// (Debian's python3-scipy), an implementation independent of benchmath's.
func TestMannWhitneyKnownAnswers(t *testing.T) {
	tests := []struct {
		x, y []float64
		p    float64
	}{
		{[]float64{1, 2, 3, 4, 5}, []float64{6, 7, 8, 9, 10}, 0.007936507936507936},
		{[]float64{1, 3, 5, 7, 9}, []float64{2, 4, 6, 8, 10}, 0.6904761904761905},
		{[]float64{1.1, 2.3, 3.5}, []float64{0.5, 4.2, 5.1, 6.0, 7.7}, 0.25},
		{[]float64{10.2, 11.5, 9.8, 10.9, 11.1, 10.4}, []float64{12.0, 11.8, 12.6, 10.7, 13.1, 12.2}, 0.015151515151515152},
	}
	for _, tt := range tests {
		if got, _ := MannWhitney(tt.x, tt.y); math.Abs(got-tt.p) > 1e-9 {
			t.Errorf("MannWhitney(%v, %v) = %v, want %v", tt.x, tt.y, got, tt.p)
		}
		if got, _ := MannWhitney(tt.y, tt.x); math.Abs(got-tt.p) > 1e-9 {
			t.Errorf("MannWhitney is not symmetric: (%v, %v) = %v, want %v", tt.y, tt.x, got, tt.p)
		}
	}
}

// TestMedianCIKnownAnswers checks the distribution-free confidence interval
// of the median: the order statistics (k, n+1-k) with the smallest
// coverage 1 - 2·BinomCDF(k-1; n, 1/2) that is still at least 95%
// (scipy.stats.binom.cdf: n=6 → (1,6) 96.9%, n=10 → (2,9) 97.9%,
// n=20 → (6,15) 95.9%). Below 6 values no interval reaches 95%: the
// summary has none (±Inf), and Range gives the values' range instead.
func TestMedianCIKnownAnswers(t *testing.T) {
	seq := func(n int) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			xs[n-1-i] = float64(i + 1) // descending: Describe must sort
		}
		return xs
	}
	tests := []struct {
		n      int
		lo, hi float64
		median float64
	}{
		{6, 1, 6, 3.5},
		{10, 2, 9, 5.5},
		{20, 6, 15, 10.5},
		{5, math.Inf(-1), math.Inf(1), 3},
	}
	for _, tt := range tests {
		s := Describe(seq(tt.n))
		if s.Median != tt.median || s.CILo != tt.lo || s.CIHi != tt.hi || s.HasInterval() == math.IsInf(tt.lo, 0) {
			t.Errorf("n=%d: median %v CI [%v, %v], want %v [%v, %v]", tt.n, s.Median, s.CILo, s.CIHi, tt.median, tt.lo, tt.hi)
		}
		if lo, hi := s.Range(); !s.HasInterval() && (lo != 1 || hi != float64(tt.n)) {
			t.Errorf("n=%d: Range [%v, %v], want the values' [1, %d]", tt.n, lo, hi, tt.n)
		}
	}
}
