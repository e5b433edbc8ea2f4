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
		forEach(insts, func(st *started) {
			pids := st.inst.Processes()
			if _, err := MemoryOf(b.Context(), pids); err != nil {
				b.Error(err)
			}
			if _, err := ProcUseOf(pids); err != nil {
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
	smp := results.Sample{Time: time.Now(), Driver: "container", Workload: "idle", Instances: 1000, Instance: "container-idle-dens-i999", Metric: results.MetricPSS, Unit: "B", Value: 917504}
	b.ReportAllocs()
	for range b.N {
		if err := s.Add(smp); err != nil {
			b.Fatal(err)
		}
	}
}
