package results

import (
	"testing"
)

func TestSummarize(t *testing.T) {
	samples := []Sample{
		{Variant: "a", Workload: "idle", Instances: 1, Metric: "startup", Unit: "sec", Value: 9, Warmup: true},
		{Variant: "a", Workload: "idle", Instances: 1, Metric: "startup", Unit: "sec", Value: 1},
		{Variant: "a", Workload: "idle", Instances: 1, Metric: "startup", Unit: "sec", Value: 3},
		{Variant: "a", Workload: "idle", Instances: 1, Metric: "startup", Unit: "sec", Error: "boom"},
		{Variant: "b", Workload: "idle", Instances: 1, Metric: "startup", Unit: "sec", Value: 5, Labels: map[string]string{"accel": "tcg"}},
	}
	sums := Summarize(samples, Linked())
	if len(sums) != 2 {
		t.Fatalf("Summarize = %d groups, want 2", len(sums))
	}
	a, b := sums[0], sums[1]
	if a.Variant != "a" || a.N != 2 || a.Failed != 1 || a.Median != 2 || a.Unit != "sec" {
		t.Errorf("group a = %+v", a)
	}
	if b.Labels["accel"] != "tcg" {
		t.Errorf("group b labels = %v", b.Labels)
	}
}
