package analysis

import (
	"slices"
	"testing"

	"virtbench/internal/results"
)

// TestHeadrooms: every limit a sweep read is set out at its top: what
// each instance took, what is left and how many instances it allows, the
// fewest first; the next limits leave out the one that stopped the sweep.
func TestHeadrooms(t *testing.T) {
	var s []results.Sample
	add := func(instances int, metric, unit string, v float64, labels map[string]string) {
		s = append(s, results.Sample{Variant: "container", Workload: "idle", Instances: instances, Metric: metric, Unit: unit, Value: v, Labels: labels})
	}
	for _, l := range []struct {
		name, unit           string
		budget, before, used float64
	}{
		{"memory", "B", 20e9, 2e9, 4e9},
		{"pid_max", "tasks", 32768, 200, 800},
		{"open_files", "files", 1000, 50, 250},
		{"neighbours", "entries", 1024, 3, 3},
	} {
		add(0, results.LimitBudgetPrefix+l.name, l.unit, l.budget, nil)
		add(0, results.LimitUsedPrefix+l.name, l.unit, l.before, nil)
		add(100, results.LimitBudgetPrefix+l.name, l.unit, l.budget, nil)
		add(100, results.LimitUsedPrefix+l.name, l.unit, l.used, nil)
	}
	add(100, results.MetricDensityReached, "instances", 100, map[string]string{results.LabelStopLimit: "pid_max"})
	a := Analyze(testRun(s, outcome(testRoles(map[string]results.Class{"container": results.ClassOSLevel}, nil), nil)), nil)
	hs := a.Headrooms()
	if len(hs) != 1 || hs[0].Reached != 100 {
		t.Fatalf("headrooms %+v, want one sweep of 100", hs)
	}
	var order []string
	allows := map[string]int{}
	for _, l := range hs[0].Limits {
		order = append(order, l.Name)
		allows[l.Name] = l.Allows
	}
	// open files: 2 each, 750 left: 475; memory: 20 MB each, 16 GB left:
	// 900; pid_max: 6 each, 31968 left: 5428; neighbours: none taken.
	if want := []string{"open_files", "memory", "pid_max", "neighbours"}; !slices.Equal(order, want) || allows["open_files"] != 475 || allows["memory"] != 900 || allows["pid_max"] != 5428 || allows["neighbours"] != Unbounded {
		t.Errorf("limits %v allowing %v, want %v allowing 475, 900, 5428, unbounded", order, allows, want)
	}
	if next := hs[0].Next(2); len(next) != 2 || next[0].Name != "open_files" || next[1].Name != "memory" || next[0].Raise == "" {
		t.Errorf("next limits %+v, want open_files then memory, each with how to raise it", next)
	}
}
