package bench

import (
	"context"
	"strconv"
	"testing"

	"virtbench/internal/results"
	"virtbench/scenarios"
)

// TestKneeNext: an objective sweep grows as the density sweep does until a
// step fails, then bisects between the last pass and the first failure
// until they are within results.ObjectiveTolerance (and one instance).
func TestKneeNext(t *testing.T) {
	geo := &scenarios.Density{Step: "geometric", Factor: 2, Max: 64}
	tests := []struct {
		name string
		k    knee
		n    int
		want int
	}{
		{"first step", knee{}, 0, 1},
		{"growing", knee{lo: 4}, 4, 8},
		{"growing to max", knee{lo: 32}, 32, 64},
		{"max passed", knee{lo: 64}, 64, 0},
		{"first failure: bisect", knee{lo: 8, hi: 16}, 16, 12},
		{"bisect up", knee{lo: 12, hi: 16}, 12, 14},
		{"found within one", knee{lo: 13, hi: 14}, 14, 0},
		{"found within the tolerance", knee{lo: 100, hi: 104}, 104, 0},
		{"nothing passes", knee{hi: 1}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.k.next(geo, tt.n); got != tt.want {
				t.Errorf("next after %d with %+v = %d, want %d", tt.n, tt.k, got, tt.want)
			}
		})
	}
}

// TestObjectiveSweep runs objective sweeps of the native http server: one
// whose objective every step meets, up to the sweep's max, and one whose
// objective none can (a p99 of a nanosecond), which binds at the first
// step. Each records its knee, its first failure, what bound it and its
// steps, and leaves nothing running.
func TestObjectiveSweep(t *testing.T) {
	tests := []struct {
		name            string
		p99             string
		knee, firstFail int
		bounds          []string
		steps           float64
	}{
		{"every step passes", "2s", 2, 0, []string{results.StopMax}, 2},
		{"no step passes", "1ns", 0, 1, []string{"latency", "rate", results.ResourceCPU}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "name: t\ndrivers: [native]\nworkloads:\n  - name: http\n    load: {rate: 250/s, duration: 4s, warmup: 200ms, slo: {p99: " + tt.p99 + ", errors: 1%}}\ndensity: {step: geometric, factor: 2, max: 2}\nsettle: 0s\n"
			samples, out, err := runScenario(t, context.Background(), scenario(t, src))
			if err != nil {
				t.Fatal(err)
			}
			var got *results.Sample
			var steps float64
			for i, s := range samples {
				switch s.Metric {
				case results.MetricObjectiveInstances:
					got = &samples[i]
				case results.MetricObjectiveSteps:
					steps = s.Value
				}
			}
			if got == nil {
				t.Fatalf("no %s sample; failures %v", results.MetricObjectiveInstances, out.Failures)
			}
			bound := got.Labels[results.LabelStopLimit]
			if int(got.Value) != tt.knee || got.Labels[results.LabelFirstFailure] != strconv.Itoa(tt.firstFail) || steps != tt.steps {
				t.Errorf("knee %v, first failure %s, %v steps (bound %s: %s); want %d, %d, %v", got.Value, got.Labels[results.LabelFirstFailure], steps, bound, got.Labels[results.LabelStopReason], tt.knee, tt.firstFail, tt.steps)
			}
			found := false
			for _, b := range tt.bounds {
				found = found || b == bound
			}
			if !found {
				t.Errorf("bound by %q (%s), want one of %v", bound, got.Labels[results.LabelStopReason], tt.bounds)
			}
			if count(samples, results.MetricLoadP99, false) == 0 {
				t.Errorf("no window recorded")
			}
		})
	}
}
