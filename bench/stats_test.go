package bench

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
			if s.CILo > s.Median || s.CIHi < s.Median {
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

func TestSummarize(t *testing.T) {
	samples := []Sample{
		{Driver: "a", Workload: "idle", Instances: 1, Metric: "startup", Unit: "sec", Value: 9, Warmup: true},
		{Driver: "a", Workload: "idle", Instances: 1, Metric: "startup", Unit: "sec", Value: 1},
		{Driver: "a", Workload: "idle", Instances: 1, Metric: "startup", Unit: "sec", Value: 3},
		{Driver: "a", Workload: "idle", Instances: 1, Metric: "startup", Unit: "sec", Error: "boom"},
		{Driver: "b", Workload: "idle", Instances: 1, Metric: "startup", Unit: "sec", Value: 5, Labels: map[string]string{"accel": "tcg"}},
	}
	sums := Summarize(samples)
	if len(sums) != 2 {
		t.Fatalf("Summarize = %d groups, want 2", len(sums))
	}
	a, b := sums[0], sums[1]
	if a.Driver != "a" || a.N != 2 || a.Failed != 1 || a.Median != 2 || a.Unit != "sec" {
		t.Errorf("group a = %+v", a)
	}
	if b.Labels["accel"] != "tcg" {
		t.Errorf("group b labels = %v", b.Labels)
	}
}
