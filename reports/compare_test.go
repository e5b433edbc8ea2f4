package reports

import (
	"bytes"
	"math/rand"
	"strings"
	"testing"
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
