package reports

import (
	"strings"
	"testing"

	"virtbench/analysis"
	"virtbench/internal/results"
)

// TestCapacityWhy: the words of a capacity row say which resource binds,
// with its cost and budget, what each other would allow, and what was not
// measured.
func TestCapacityWhy(t *testing.T) {
	const mib = 1 << 20
	mem := analysis.Limit{Resource: analysis.ResMemory, Budget: 8 << 30, Cost: analysis.Cost{Value: 100 * mib, Unit: "B"}, Count: 81}
	cpu := analysis.Limit{Resource: analysis.ResCPU, Budget: 1.6, Cost: analysis.Cost{Value: 0.001, Unit: "cores"}, Count: 1600}
	idleCPU := analysis.Limit{Resource: analysis.ResCPU, Budget: 1.6, Cost: analysis.Cost{Unit: "cores"}, Count: analysis.Unbounded}
	bindingCPU := analysis.Limit{Resource: analysis.ResCPU, Budget: 1.6, Cost: analysis.Cost{Value: 0.1, Unit: "cores"}, Count: 16}
	tests := []struct {
		c    analysis.Capacity
		want string
	}{
		{analysis.Capacity{Binding: analysis.ResMemory, Limits: []analysis.Limit{mem, cpu}}, "memory binds: 100.0MiB per instance, 8.000GiB usable; CPU would allow 1600"},
		{analysis.Capacity{Binding: analysis.ResCPU, Limits: []analysis.Limit{mem, bindingCPU}}, "CPU binds: 0.100 cores per instance, 1.6 cores usable; memory would allow 81"},
		{analysis.Capacity{Binding: analysis.ResMemory, Limits: []analysis.Limit{mem, idleCPU}}, "CPU is no limit (none used while idle)"},
		{analysis.Capacity{Binding: analysis.ResMemory, Limits: []analysis.Limit{mem}, Unmeasured: []string{analysis.ResCPU, analysis.ResPids, analysis.ResDisk}}, "not measured: CPU, pids, disk"},
	}
	for _, tt := range tests {
		if got := why(tt.c); !strings.Contains(got, tt.want) {
			t.Errorf("why = %q, want %q", got, tt.want)
		}
	}
}

// TestLimitsText: the cgroup limits a run ran under, with the cgroups
// that set them.
func TestLimitsText(t *testing.T) {
	p := results.Provenance{MemoryLimitBytes: 4 << 30, MemoryLimitAt: "/sys/fs/cgroup/memory/pod", CPULimitCores: 0.5, CPULimitAt: "/sys/fs/cgroup/cpu/pod"}
	if got := LimitsText(p); !strings.Contains(got, "memory 4.000GiB (/sys/fs/cgroup/memory/pod)") || !strings.Contains(got, "CPU 0.50 cores") {
		t.Errorf("LimitsText = %q", got)
	}
	if got := LimitsText(results.Provenance{}); got != "no cgroup memory limit or CPU quota" {
		t.Errorf("LimitsText without limits = %q", got)
	}
}
