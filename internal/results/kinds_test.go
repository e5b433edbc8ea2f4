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
		{MetricStartup, Kind{Family: FamilyStartup, Unit: "sec", Better: guest.LowerIsBetter}, false},
		{PhaseMetricPrefix + "vmm", Kind{Family: FamilyStartup, Unit: "sec", Better: guest.LowerIsBetter}, false},
		{BootMetricPrefix + "kernel", Kind{Family: FamilyStartup, Unit: "sec", Better: guest.LowerIsBetter}, false},
		{"cpu.sha256", Kind{Family: FamilyPerformance, Unit: "op/s", Better: guest.HigherIsBetter}, true},
		{"syscall.getppid", Kind{Family: FamilyPerformance, Unit: "sec/op", Better: guest.LowerIsBetter}, true},
		// The mem workload's result is a speed; a VM's memory part is not.
		{"mem.copy", Kind{Family: FamilyPerformance, Unit: "B/s", Better: guest.HigherIsBetter}, true},
		{MemPartPrefix + "vmm_overhead", Kind{Family: FamilyMemory, Unit: "B", Better: guest.LowerIsBetter}, false},
		{"alloc.bytes", Kind{Family: FamilyOther, Unit: "B", Better: guest.NoBetter}, false},
		{MetricNetP99, Kind{Family: FamilyPerformance, Unit: "sec", Better: guest.LowerIsBetter}, true},
		// Density metrics are not speeds, even at one instance.
		{MetricDensityCPU, Kind{Family: FamilyDensity, Unit: "cores", Better: guest.LowerIsBetter}, false},
		{MetricWritableAllocated, Kind{Family: FamilyDisk, Unit: "B", Better: guest.LowerIsBetter}, false},
		{"probe.pid", Kind{Family: FamilyOther}, false},
	}
	for _, tt := range tests {
		got := KindOf(tt.metric)
		got.Doc, got.Once = "", false
		if got != tt.want || got.Speed() != tt.speed {
			t.Errorf("KindOf(%q) = %+v (speed %v), want %+v (speed %v)", tt.metric, got, got.Speed(), tt.want, tt.speed)
		}
	}
}

// TestEveryKindDocumented: each declared metric says what it is, and
// those measured once by design say so (a single value is no weak sample).
func TestEveryKindDocumented(t *testing.T) {
	for name, k := range kinds {
		if k.Doc == "" || k.Unit == "" && name != MetricTrialExcluded {
			t.Errorf("metric %s: kind %+v lacks a doc or a unit", name, k)
		}
	}
	for _, m := range []string{MetricImageAllocated, MetricDensityReached, MetricSamplerDuration} {
		if !KindOf(m).Once {
			t.Errorf("%s is measured once by design but not declared Once", m)
		}
	}
	if KindOf(MetricStartup).Once {
		t.Error("startup declared Once")
	}
}

// TestDeclare: a driver's own metric, once declared, has its kind; an
// undeclared one has none; declaring a name twice with another meaning
// panics.
func TestDeclare(t *testing.T) {
	k := Kind{Family: FamilyStartup, Unit: "sec", Better: guest.LowerIsBetter, Once: true, Doc: "test"}
	if Declared("test_prepare") {
		t.Fatal("test_prepare declared before Declare")
	}
	Declare("test_prepare", k)
	Declare("test_prepare", k) // the same meaning again: fine
	if !Declared("test_prepare") || KindOf("test_prepare") != k {
		t.Errorf("KindOf after Declare = %+v", KindOf("test_prepare"))
	}
	defer func() {
		if recover() == nil {
			t.Error("declaring test_prepare again as bytes did not panic")
		}
	}()
	Declare("test_prepare", Kind{Family: FamilyDisk, Unit: "B"})
}
