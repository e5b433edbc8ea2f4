package bench

import (
	"os/exec"
	"testing"
	"time"

	"virtbench/internal/results"
)

// BenchmarkSampleSweep measures one sweep of the density sampler's reads
// (smaps_rollup and stat) over 100 live processes, spread over the host's
// CPUs as the sampler spreads them: divide by 100 for one process.
func BenchmarkSampleSweep(b *testing.B) {
	const n = 100
	insts := make([]*started, n)
	for i := range insts {
		cmd := exec.Command("sleep", "600")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		insts[i] = &started{inst: &fakeInstance{pid: int32(cmd.Process.Pid)}}
	}
	b.ResetTimer()
	for range b.N {
		forEach(insts, func(st *started, r *procReader) {
			pids := st.inst.Processes()
			if _, err := r.memoryOf(b.Context(), pids); err != nil {
				b.Error(err)
			}
			if _, err := r.procUseOf(pids); err != nil {
				b.Error(err)
			}
		})
	}
}

// BenchmarkStoreAdd measures appending one sample to samples.jsonl.
func BenchmarkStoreAdd(b *testing.B) {
	s, err := results.CreateStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	smp := results.Sample{Time: time.Now(), Variant: "container", Workload: "idle", Instances: 1000, Instance: "container-idle-dens-i999", Metric: results.MetricPSS, Unit: "B", Value: 917504}
	b.ReportAllocs()
	for range b.N {
		if err := s.Add(smp); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSettle: the idle CPU is read once use stopped falling: at once below
// IdleFloor, at the second window for a steady load, after the fall for a
// VM finishing its boot, and at the limit for one that keeps falling.
func TestSettle(t *testing.T) {
	tests := []struct {
		name    string
		rates   []float64
		limit   time.Duration
		windows int // measured, the last one read
	}{
		{"idle at once", []float64{0.004}, time.Hour, 1},
		{"steady", []float64{0.5, 0.48}, time.Hour, 2},
		{"boot's aftermath", []float64{0.9, 0.6, 0.2, 0.05, 0.048, 0.01}, time.Hour, 5},
		{"settled below the floor", []float64{0.9, 0.3, 0.005}, time.Hour, 3},
		{"still falling at the limit", []float64{0.9, 0.5, 0.2, 0.1}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			st := &started{}
			u, _, err := settle(func() (cpuUse, error) {
				r := tt.rates[min(n, len(tt.rates)-1)]
				n++
				return cpuUse{cores: map[*started]float64{st: r}}, nil
			}, tt.limit)
			if err != nil || n != tt.windows || u.perInstance() != tt.rates[tt.windows-1] {
				t.Errorf("measured %d windows, read %v (%v); want %d, %v", n, u.perInstance(), err, tt.windows, tt.rates[tt.windows-1])
			}
		})
	}
}
