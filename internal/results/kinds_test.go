package results

import (
	"slices"
	"testing"

	"virtbench/internal/measure"
)

func TestKindOf(t *testing.T) {
	DeclareWorkload(Workload{Name: "kindtest", Summary: "a test", Measures: []measure.Measure{
		{Name: "kindtest.ops", Unit: "op/s", Better: HigherIsBetter, Dimension: DimensionCPU},
		{Name: "kindtest.call", Unit: "sec/op", Better: LowerIsBetter, Dimension: DimensionSyscall},
		{Name: "kindtest.bytes", Unit: "B"},
	}})
	tests := []struct {
		metric string
		want   MetricKind
		speed  bool
	}{
		{MetricStartup, MetricKind{Family: FamilyStartup, Unit: "sec", Better: LowerIsBetter, Min: MinStart}, false},
		{PhaseMetricPrefix + "vmm", MetricKind{Family: FamilyStartup, Unit: "sec", Better: LowerIsBetter}, false},
		{BootMetricPrefix + "kernel", MetricKind{Family: FamilyStartup, Unit: "sec", Better: LowerIsBetter}, false},
		// A workload's result that improves is a speed; a VM's memory
		// part is not, nor is a workload's amount.
		{"kindtest.ops", MetricKind{Family: FamilyPerformance, Unit: "op/s", Better: HigherIsBetter, Dimension: DimensionCPU}, true},
		{"kindtest.call", MetricKind{Family: FamilyPerformance, Unit: "sec/op", Better: LowerIsBetter, Dimension: DimensionSyscall}, true},
		{MemPartPrefix + "vmm_overhead", MetricKind{Family: FamilyMemory, Unit: "B", Better: LowerIsBetter}, false},
		{"kindtest.bytes", MetricKind{Family: FamilyOther, Unit: "B", Better: NoBetter}, false},
		{MetricNetP99, MetricKind{Family: FamilyPerformance, Unit: "sec", Better: LowerIsBetter}, true},
		// Density metrics are not speeds, even at one instance.
		{MetricDensityCPU, MetricKind{Family: FamilyDensity, Unit: "cores", Better: LowerIsBetter}, false},
		{MetricWritableAllocated, MetricKind{Family: FamilyDisk, Unit: "B", Better: LowerIsBetter}, false},
		{"probe.pid", MetricKind{Family: FamilyOther}, false},
	}
	for _, tt := range tests {
		got := Linked().Kind(tt.metric)
		got.Doc, got.Once = "", false
		if got != tt.want || got.Speed() != tt.speed {
			t.Errorf("Linked().Kind(%q) = %+v (speed %v), want %+v (speed %v)", tt.metric, got, got.Speed(), tt.want, tt.speed)
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
		if !Linked().Kind(m).Once {
			t.Errorf("%s is measured once by design but not declared Once", m)
		}
	}
	if Linked().Kind(MetricStartup).Once {
		t.Error("startup declared Once")
	}
}

// TestDeclare: a driver's own metric, once declared, has its kind; an
// undeclared one has none; declaring a name twice with another meaning
// panics.
func TestDeclare(t *testing.T) {
	k := MetricKind{Family: FamilyStartup, Unit: "sec", Better: LowerIsBetter, Once: true, Doc: "test"}
	if Linked().Declared("test_prepare") {
		t.Fatal("test_prepare declared before Declare")
	}
	Declare("test_prepare", k)
	Declare("test_prepare", k) // the same meaning again: fine
	if !Linked().Declared("test_prepare") || Linked().Kind("test_prepare") != k {
		t.Errorf("KindOf after Declare = %+v", Linked().Kind("test_prepare"))
	}
	defer func() {
		if recover() == nil {
			t.Error("declaring test_prepare again as bytes did not panic")
		}
	}()
	Declare("test_prepare", MetricKind{Family: FamilyDisk, Unit: "B"})
}

// TestDeclareWorkload: a declared workload is found with its role, its
// results are found on their dimension, and an undeclared one is none.
func TestDeclareWorkload(t *testing.T) {
	DeclareWorkload(Workload{Name: "wltest", Baseline: true, Disk: true, Measures: []measure.Measure{{Name: "wltest.io", Unit: "B/s", Better: HigherIsBetter, Dimension: DimensionDiskBW}}})
	if w, ok := Linked().Workload("wltest"); !ok || !w.Baseline || !w.Disk || !Linked().BaselineWorkload("wltest") {
		t.Errorf("WorkloadOf(wltest) = %+v, %v", w, ok)
	}
	if Linked().BaselineWorkload("nosuch") {
		t.Error("an undeclared workload is a baseline")
	}
	if got := Linked().MetricsOn(DimensionDiskBW); !slices.Contains(got, "wltest.io") || slices.Contains(got, MetricStartup) {
		t.Errorf("MetricsOn(disk) = %v", got)
	}
}

// TestRoleObserve: a variant's role is read from its instances' labels
// through their declared roles; accelerators are kept per instance, not
// joined, and undeclared labels say nothing.
func TestRoleObserve(t *testing.T) {
	DeclareLabel(Label{Key: "roletest_image", Role: LabelImage, FullOS: []string{"full"}})
	DeclareLabel(Label{Key: "roletest_accel", Role: LabelAccel})
	DeclareLabel(Label{Key: "roletest_asked", Role: LabelAccelRequested})
	DeclareLabel(Label{Key: "roletest_platform", Role: LabelPlatform})
	var r Role
	r.Observe(Linked(), map[string]string{"roletest_image": "minimal", "roletest_accel": AccelTCG, "roletest_asked": "auto", "undeclared": "x"})
	if r.FullOS || !r.Emulated() || r.HardwareAssisted() || r.AccelRequested != "auto" {
		t.Errorf("after one TCG instance: %+v", r)
	}
	r.Observe(Linked(), map[string]string{"roletest_image": "full", "roletest_accel": AccelKVM, "roletest_platform": "systrap"})
	if !r.FullOS || r.Emulated() || r.HardwareAssisted() || !slices.Equal(r.Accel, []string{AccelKVM, AccelTCG}) || r.Platform != "systrap" {
		t.Errorf("after a KVM instance too: %+v", r)
	}
	defer func() {
		if recover() == nil {
			t.Error("declaring roletest_accel again with another role did not panic")
		}
	}()
	DeclareLabel(Label{Key: "roletest_accel", Role: LabelSetting})
}
