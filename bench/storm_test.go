package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"virtbench/internal/results"
	"virtbench/scenarios"
)

// TestStorm runs start storms: every instance of a storm is in its start
// at once (the fake's gate holds each start until all four are), each
// start is a storm.startup sample, and each storm records its rate, per
// second and per core, and no ordinary startup.
func TestStorm(t *testing.T) {
	f := &fake{gate: 4, startTime: func(running int) time.Duration { return time.Duration(1+running) * time.Millisecond }}
	useFake(t, f)
	samples, out, err := runScenario(t, context.Background(), scenario(t, "name: t\ndrivers: [fake]\nworkloads: [idle]\nstorm: [4]\nreps: 2\nwarmup: 0\nsettle: 0s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f.started != 8 || f.running != 0 || f.gateMissed != 0 {
		t.Errorf("started %d, still running %d, %d starts not all in flight at once; want 8, 0, 0", f.started, f.running, f.gateMissed)
	}
	if got := count(samples, results.MetricStormStartup, false); got != 8 {
		t.Errorf("%d storm.startup samples, want 8", got)
	}
	if got := count(samples, results.MetricStartup, false); got != 0 {
		t.Errorf("%d startup samples in a storm-only run, want 0", got)
	}
	var rates, perCore []float64
	for _, s := range samples {
		switch s.Metric {
		case results.MetricStormRate:
			rates = append(rates, s.Value)
		case results.MetricStormRatePerCore:
			perCore = append(perCore, s.Value)
		}
		if strings.HasPrefix(s.Metric, "storm.") && s.Instances != 4 {
			t.Errorf("%s recorded at %d instances, want the storm's 4", s.Metric, s.Instances)
		}
	}
	if len(rates) != 2 || len(perCore) != 2 {
		t.Fatalf("rates %v, per core %v; want one each per storm", rates, perCore)
	}
	// Four starts READY within 1-4 ms of the first start (the fake's
	// start times) and the gate: at most a rate of 4 in 1 ms.
	for i := range rates {
		if rates[i] <= 0 || rates[i] > 4000 || fmt.Sprintf("%.6g", perCore[i]) != fmt.Sprintf("%.6g", rates[i]/float64(runtime.NumCPU())) {
			t.Errorf("storm %d: rate %g, per core %g; want 0 < rate <= 4000 and per core = rate / %d CPUs", i, rates[i], perCore[i], runtime.NumCPU())
		}
	}
	if len(out.RepsCapped) != 0 {
		t.Errorf("capped %v without reps: auto", out.RepsCapped)
	}
}

// TestRepsAuto repeats until the figures are known: a variant whose
// starts do not vary stops at the fewest repetitions, one whose starts
// scatter reaches the most and is listed as capped; they take turns
// while both repeat.
func TestRepsAuto(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	f := &fake{}
	f.startTime = func(int) time.Duration {
		if f.started%2 == 1 { // variant steady starts first in every turn
			return time.Millisecond
		}
		return time.Duration(1+rng.IntN(100)) * time.Millisecond
	}
	useFake(t, f)
	sc := scenario(t, "name: t\ndrivers:\n  - {name: steady, driver: fake}\n  - {name: noisy, driver: fake}\nworkloads: [idle]\nreps: {auto: 5%, min: 6, max: 12}\nwarmup: 0\nsettle: 0s\n")
	samples, out, err := runScenario(t, context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	var order []string
	for _, s := range samples {
		if s.Metric == results.MetricStartup {
			got[s.Variant]++
			order = append(order, s.Variant)
		}
	}
	if got["steady"] != 6 || got["noisy"] != 12 {
		t.Errorf("repetitions %v, want steady 6 (its interval is 0 wide at once) and noisy 12 (the most)", got)
	}
	if want := strings.Repeat("steady noisy ", 6) + strings.TrimSpace(strings.Repeat("noisy ", 6)); strings.Join(order, " ") != want {
		t.Errorf("order %v, want the two taking turns while both repeat", order)
	}
	if len(out.RepsCapped) != 1 || !strings.HasPrefix(out.RepsCapped[0], "noisy idle ×1: startup's median known to ±") {
		t.Errorf("capped %q, want noisy's trials with how well they were known", out.RepsCapped)
	}
}

func TestRepeats(t *testing.T) {
	sc := &scenarios.Scenario{Reps: 30, Auto: &scenarios.AutoReps{Width: 0.05, Min: 6}}
	tests := []struct {
		name   string
		reps   int
		values map[string][]float64
		stop   bool
		why    string
	}{
		{"too few for an interval", 5, map[string][]float64{"startup": {1, 1, 1, 1, 1}}, false, "startup has no 95% interval yet after 5 repetitions"},
		{"narrow", 6, map[string][]float64{"startup": {1, 1, 1, 1.01, 0.99, 1}}, true, "startup's median known to ±1.0% after 6 repetitions (wanted ±5%)"},
		{"one figure wide", 8, map[string][]float64{"startup": {1, 1, 1, 1, 1, 1, 1, 1}, "cpu.ops": {1, 2, 3, 4, 5, 6, 7, 8}}, false, "cpu.ops's median known to ±"},
		{"below the minimum", 6, map[string][]float64{"startup": {1, 1, 1, 1, 1, 1}}, false, "startup's median known to ±0.0% after 6"},
		{"nothing to decide on", 6, nil, true, "nothing to decide on after 6 repetitions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "below the minimum" {
				defer func(m int) { sc.Auto.Min = m }(sc.Auto.Min)
				sc.Auto.Min = 7
			}
			stop, why := repeats(sc, tt.reps, tt.values)
			if stop != tt.stop || !strings.HasPrefix(why, tt.why) {
				t.Errorf("repeats = %v, %q; want %v, %q…", stop, why, tt.stop, tt.why)
			}
		})
	}
}
