package bench

import (
	"context"
	"fmt"
	"slices"
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
// with an objective that a quiet host meets at every step, up to the
// sweep's max, and one whose objective none can (a p99 of a nanosecond),
// which binds at the first step. Each records its knee, its first failure
// (consistent with each other: a loaded host may fail the first
// objective too, on its rate), what bound it and its steps, and leaves
// nothing running.
func TestObjectiveSweep(t *testing.T) {
	failures := []string{"latency", "rate", "errors", results.ResourceCPU, results.StopWeak, results.StopUnstable}
	tests := []struct {
		name    string
		p99     string
		windows int
		bounds  []string // where no step failed: max
	}{
		{"generous, two windows a step", "2s", 2, append([]string{results.StopMax}, failures...)},
		{"no step passes", "1ns", 1, failures},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := fmt.Sprintf("name: t\ndrivers: [native]\nworkloads:\n  - name: http\n    load: {rate: 250/s, duration: 4s, warmup: 200ms, windows: %d, slo: {p99: %s, errors: 1%%}}\ndensity: {step: geometric, factor: 2, max: 2}\nsettle: 0s\n", tt.windows, tt.p99)
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
			knee, bound := int(got.Value), got.Labels[results.LabelStopLimit]
			first, _ := strconv.Atoi(got.Labels[results.LabelFirstFailure])
			why := fmt.Sprintf("knee %d, first failure %d, %v steps, bound %s (%s)", knee, first, steps, bound, got.Labels[results.LabelStopReason])
			if !slices.Contains(tt.bounds, bound) {
				t.Errorf("%s: want a bound of %v", why, tt.bounds)
			}
			switch {
			case bound == results.StopMax && (knee != 2 || first != 0 || steps != 2):
				t.Errorf("%s: every step passed, so want knee 2, no failure, 2 steps", why)
			case bound != results.StopMax && (first != knee+1 || first > 2 || steps < 1):
				t.Errorf("%s: want the first failure right above the knee, at most the max 2", why)
			case tt.p99 == "1ns" && (knee != 0 || first != 1 || steps != 1):
				t.Errorf("%s: want no step passed, the first failing", why)
			}
			if count(samples, results.MetricLoadP99, false) == 0 || count(samples, results.MetricLoadGenCPU, false) != tt.windows*int(steps) {
				t.Errorf("%d windows and %d generator samples in %v steps of %d windows: want windows, and the generators measured at every window", count(samples, results.MetricLoadP99, false), count(samples, results.MetricLoadGenCPU, false), steps, tt.windows)
			}
		})
	}
}
