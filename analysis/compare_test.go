package analysis

import (
	"math/rand"
	"testing"

	"virtbench/internal/results"
)

// noisyRun returns a run whose startup samples are scale × (1 ± 5% noise)
// and whose cpu samples are throughput × (1 ± 5%), from a seeded source.
func noisyRun(seed int64, host string, startup, throughput float64) *Run {
	rng := rand.New(rand.NewSource(seed))
	var samples []results.Sample
	for i := 0; i < 20; i++ {
		samples = append(samples,
			results.Sample{Variant: "native", Workload: "idle", Instances: 1, Metric: "startup", Unit: "sec", Value: startup * (1 + 0.1*(rng.Float64()-0.5))},
			results.Sample{Variant: "native", Workload: "cpu", Instances: 1, Metric: "cpu.sha256", Unit: "op/s", Value: throughput * (1 + 0.1*(rng.Float64()-0.5))})
	}
	r := testRun(samples, results.Outcome{})
	r.Provenance.Hostname = host
	return r
}

// TestCompareDirections: a change is better or worse by the direction its
// metric declares, in every family: a density sweep that reached twice
// as many instances, or KSM saving twice as much, is an improvement (the
// bug: direction came from the unit's "/s"), and an amount of no direction
// is only a change.
func TestCompareDirections(t *testing.T) {
	tests := []struct {
		metric, unit  string
		old, new      float64
		worse, better bool
	}{
		{results.MetricStartup, "sec", 1, 2, true, false},
		{results.MetricStartup, "sec", 2, 1, false, true},
		{results.MetricPSS, "B", 1 << 20, 2 << 20, true, false},
		{results.MetricImageAllocated, "B", 2 << 20, 1 << 20, false, true},
		{results.MetricIdleCPU, "cores", 0.01, 0.02, true, false},
		{"cpu.sha256", "op/s", 1000, 500, true, false},
		{"syscall.getppid", "sec/op", 2e-7, 1e-7, false, true},
		{results.MetricDensityReached, "instances", 100, 200, false, true},
		{results.MetricDensityReached, "instances", 200, 100, true, false},
		{results.MetricKSMSaved, "B", 50 << 20, 100 << 20, false, true},
		{results.MetricDensityAvailable, "B", 4 << 30, 8 << 30, false, true},
		{results.MetricSamplerDuration, "sec", 0.05, 0.1, true, false},
		{results.MemPartPrefix + "guest_ram_configured", "B", 256 << 20, 512 << 20, false, false},
	}
	for _, tt := range tests {
		run := func(v float64) *Run {
			var samples []results.Sample
			for i := range 10 {
				samples = append(samples, results.Sample{Variant: "d", Workload: "w", Instances: 1, Metric: tt.metric, Unit: tt.unit, Value: v * (1 + 0.001*float64(i))})
			}
			return testRun(samples, results.Outcome{})
		}
		ch := Compare([]*Run{run(tt.old), run(tt.new)})
		if len(ch) != 1 || !ch[0].Significant || ch[0].Regression != tt.worse || ch[0].Improvement != tt.better {
			t.Errorf("%s %v -> %v: %+v; want worse=%v better=%v", tt.metric, tt.old, tt.new, ch, tt.worse, tt.better)
		}
	}
}

func TestCompare(t *testing.T) {
	base := noisyRun(1, "a", 0.010, 1000)
	tests := []struct {
		name        string
		run         *Run
		regressions int // above 20%
	}{
		{"same", noisyRun(2, "a", 0.010, 1000), 0},
		{"slower start", noisyRun(3, "b", 0.015, 1000), 1},
		{"lower throughput", noisyRun(4, "b", 0.010, 500), 1},
		{"faster", noisyRun(5, "b", 0.005, 2000), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes := Compare([]*Run{base, tt.run})
			if len(changes) != 2 {
				t.Fatalf("%d changes, want 2", len(changes))
			}
			if got := len(Regressions(changes, 20)); got != tt.regressions {
				t.Errorf("%d regressions above 20%%, want %d: %+v", got, tt.regressions, changes)
			}
			if tt.name == "same" {
				for _, c := range changes {
					if c.Significant {
						t.Errorf("%s: significant change between two samples of the same distribution: %+v", c.Metric, c)
					}
				}
			}
			if changes[0].Host != tt.run.Provenance.Hostname {
				t.Errorf("host column %q", changes[0].Host)
			}
		})
	}
}
