package reports

import (
	"bytes"
	"maps"
	"math/rand"
	"strings"
	"testing"

	"golang.org/x/perf/benchfmt"

	"virtbench/internal/results"
)

// noisyRun returns a run whose startup samples are scale × (1 ± 5% noise)
// and whose cpu samples are throughput × (1 ± 5%), from a seeded source.
func noisyRun(seed int64, host string, startup, throughput float64) *Run {
	rng := rand.New(rand.NewSource(seed))
	r := &Run{Provenance: results.Provenance{Hostname: host}}
	for i := 0; i < 20; i++ {
		r.Samples = append(r.Samples,
			results.Sample{Driver: "native", Workload: "idle", Instances: 1, Metric: "startup", Unit: "sec", Value: startup * (1 + 0.1*(rng.Float64()-0.5))},
			results.Sample{Driver: "native", Workload: "cpu", Instances: 1, Metric: "cpu.sha256", Unit: "op/s", Value: throughput * (1 + 0.1*(rng.Float64()-0.5))})
	}
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
			r := &Run{}
			for i := range 10 {
				r.Samples = append(r.Samples, results.Sample{Driver: "d", Workload: "w", Instances: 1, Metric: tt.metric, Unit: tt.unit, Value: v * (1 + 0.001*float64(i))})
			}
			return r
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
			var b bytes.Buffer
			if err := WriteCompare(&b, changes); err != nil || !strings.Contains(b.String(), "delta") {
				t.Errorf("WriteCompare: %v %q", err, b.String())
			}
		})
	}
}

// TestBenchfmtDirections: results.txt says each unit's direction as
// declared, and a metric that improves upwards in a unit that otherwise
// improves downwards (bytes KSM saved beside PSS) gets a unit of its own,
// as benchfmt's reader sees it.
func TestBenchfmtDirections(t *testing.T) {
	var samples []results.Sample
	for _, s := range []struct{ metric, unit string }{
		{results.MetricPSS, "B"}, {results.MetricKSMSaved, "B"}, {results.MetricDensityReached, "instances"},
		{results.MetricStartup, "sec"}, {results.MetricDensityFloor, "B"},
	} {
		samples = append(samples, results.Sample{Driver: "qemu", Workload: "idle", Instances: 1, Metric: s.metric, Unit: s.unit, Value: 1})
	}
	var b bytes.Buffer
	if err := WriteBenchfmt(&b, results.Provenance{}, samples); err != nil {
		t.Fatal(err)
	}
	r := benchfmt.NewReader(&b, "results.txt")
	units := map[string]string{}
	for r.Scan() {
		if res, ok := r.Result().(*benchfmt.Result); ok {
			units[string(res.Name)] = res.Values[0].Unit
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	better := map[string]string{}
	for k, m := range r.Units() {
		if k.Key == "better" {
			better[k.Unit] = m.Value
		}
	}
	want := map[string]string{"B": "lower", "B" + higherSuffix: "higher", "instances": "higher", "sec": "lower"}
	if !maps.Equal(better, want) {
		t.Errorf("better= per unit %v, want %v", better, want)
	}
	if u := units["KsmSavedPerInst/driver=qemu/workload=idle/instances=1"]; u != "B"+higherSuffix {
		t.Errorf("bytes KSM saved written in %q (units %v)", u, units)
	}
}
