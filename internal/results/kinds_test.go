package results

import (
	"testing"

	"virtbench/guest"
)

func TestKindOf(t *testing.T) {
	tests := []struct {
		metric string
		want   Kind
		speed  bool
	}{
		{MetricStartup, Kind{FamilyStartup, "sec", guest.LowerIsBetter}, false},
		{PhaseMetricPrefix + "vmm", Kind{FamilyStartup, "sec", guest.LowerIsBetter}, false},
		{BootMetricPrefix + "kernel", Kind{FamilyStartup, "sec", guest.LowerIsBetter}, false},
		{"cpu.sha256", Kind{FamilyPerformance, "op/s", guest.HigherIsBetter}, true},
		{"syscall.getppid", Kind{FamilyPerformance, "sec/op", guest.LowerIsBetter}, true},
		// The mem workload's result is a speed; a VM's memory part is not.
		{"mem.copy", Kind{FamilyPerformance, "B/s", guest.HigherIsBetter}, true},
		{MemPartPrefix + "vmm_overhead", Kind{FamilyMemory, "B", guest.LowerIsBetter}, false},
		{"alloc.bytes", Kind{FamilyOther, "B", guest.NoBetter}, false},
		{MetricNetP99, Kind{FamilyPerformance, "sec", guest.LowerIsBetter}, true},
		// Density metrics are not speeds, even at one instance.
		{MetricDensityCPU, Kind{FamilyDensity, "cores", guest.LowerIsBetter}, false},
		{MetricWritableAllocated, Kind{FamilyDisk, "B", guest.LowerIsBetter}, false},
		{"probe.pid", Kind{Family: FamilyOther}, false},
	}
	for _, tt := range tests {
		got := KindOf(tt.metric)
		if got != tt.want || got.Speed() != tt.speed {
			t.Errorf("KindOf(%q) = %+v (speed %v), want %+v (speed %v)", tt.metric, got, got.Speed(), tt.want, tt.speed)
		}
	}
}
