package results

import (
	"strings"

	"virtbench/guest"
)

// Family is what a metric measures.
type Family string

const (
	// FamilyStartup: how long a start (or a stop) took, the start's phases
	// and a guest's boot.
	FamilyStartup Family = "startup"
	// FamilyMemory: what an instance holds in memory.
	FamilyMemory Family = "memory"
	// FamilyDisk: what an image or an instance holds on disk.
	FamilyDisk Family = "disk"
	// FamilyIdle: what an idle instance costs beyond memory (CPU, tasks).
	FamilyIdle Family = "idle"
	// FamilyPerformance: how fast a workload ran, from its own results or
	// from the load the host drove at it.
	FamilyPerformance Family = "performance"
	// FamilyDensity: a density sweep's steps, and KSM's merging.
	FamilyDensity Family = "density"
	// FamilyHarness: what virtbench itself cost.
	FamilyHarness Family = "harness"
	// FamilyOther: a value reported for its own sake (a test workload's).
	FamilyOther Family = "other"
)

// Kind is what a metric is: its family, its unit, and which way it
// improves (guest.NoBetter for an amount that is neither).
type Kind struct {
	Family Family
	Unit   string
	Better guest.Better
}

// Speed reports whether the metric is a speed: a performance metric
// that improves one way or the other.
func (k Kind) Speed() bool { return k.Family == FamilyPerformance && k.Better != guest.NoBetter }

var (
	startupKind = Kind{FamilyStartup, "sec", guest.LowerIsBetter}
	memoryKind  = Kind{FamilyMemory, "B", guest.LowerIsBetter}
	diskKind    = Kind{FamilyDisk, "B", guest.LowerIsBetter}
)

// kinds declares the runner's own metrics. Workloads declare theirs
// (guest.Workload.Measures).
var kinds = map[string]Kind{
	MetricStartup:     startupKind,
	MetricTeardown:    startupKind,
	MetricGuestBoot:   startupKind,
	MetricGuestUptime: startupKind,

	MetricRSS:         memoryKind,
	MetricPSS:         memoryKind,
	MetricUSS:         memoryKind,
	MetricPSSAnon:     memoryKind,
	MetricCgroupMem:   memoryKind,
	MetricHostMemDrop: memoryKind,
	// A VM's resident memory, split by the driver (drivers.MemoryParter).
	MetricMemParts:                         memoryKind,
	MemPartPrefix + "guest_ram_configured": {FamilyMemory, "B", guest.NoBetter},
	MemPartPrefix + "guest_ram_resident":   memoryKind,
	MemPartPrefix + "vmm_overhead":         memoryKind,

	MetricIdleCPU: {FamilyIdle, "cores", guest.LowerIsBetter},
	MetricTasks:   {FamilyIdle, "tasks", guest.LowerIsBetter},

	MetricImageApparent:     diskKind,
	MetricImageAllocated:    diskKind,
	MetricWritableApparent:  diskKind,
	MetricWritableAllocated: diskKind,

	MetricNetRPS: {FamilyPerformance, "op/s", guest.HigherIsBetter},
	MetricNetP50: {FamilyPerformance, "sec", guest.LowerIsBetter},
	MetricNetP99: {FamilyPerformance, "sec", guest.LowerIsBetter},

	MetricDensityStartup:   {FamilyDensity, "sec", guest.LowerIsBetter},
	MetricDensityMarginal:  {FamilyDensity, "sec", guest.LowerIsBetter},
	MetricDensityPSS:       {FamilyDensity, "B", guest.LowerIsBetter},
	MetricDensityMemDrop:   {FamilyDensity, "B", guest.LowerIsBetter},
	MetricDensityAvailable: {FamilyDensity, "B", guest.HigherIsBetter},
	MetricDensityHostCPU:   {FamilyDensity, "%", guest.LowerIsBetter},
	MetricDensityCPU:       {FamilyDensity, "cores", guest.LowerIsBetter},
	MetricDensityTasks:     {FamilyDensity, "tasks", guest.LowerIsBetter},
	MetricDensityReached:   {FamilyDensity, "instances", guest.HigherIsBetter},
	MetricDensityFloor:     {FamilyDensity, "B", guest.NoBetter},
	MetricDensityTeardown:  {FamilyDensity, "sec", guest.LowerIsBetter},
	MetricKSMShared:        {FamilyDensity, "pages", guest.NoBetter},
	MetricKSMSharing:       {FamilyDensity, "pages", guest.HigherIsBetter},
	MetricKSMSaved:         {FamilyDensity, "B", guest.HigherIsBetter},
	MetricKSMSettle:        {FamilyDensity, "sec", guest.LowerIsBetter},

	MetricSamplerDuration: {FamilyHarness, "sec", guest.LowerIsBetter},
	MetricTrialExcluded:   {FamilyHarness, "", guest.NoBetter},
}

// measures are the workloads' declared results, by name.
var measures = func() map[string]Kind {
	m := map[string]Kind{}
	for _, w := range guest.Workloads() {
		for _, r := range w.Measures {
			f := FamilyPerformance
			if r.Better == guest.NoBetter {
				f = FamilyOther
			}
			m[r.Name] = Kind{f, r.Unit, r.Better}
		}
	}
	return m
}()

// KindOf returns what metric is: a workload's declared result, one of
// the runner's metrics, a start phase (PhaseMetricPrefix) or a boot
// stage (BootMetricPrefix). Anything else is FamilyOther, with no unit
// and no direction.
func KindOf(metric string) Kind {
	if k, ok := measures[metric]; ok {
		return k
	}
	if k, ok := kinds[metric]; ok {
		return k
	}
	if strings.HasPrefix(metric, PhaseMetricPrefix) || strings.HasPrefix(metric, BootMetricPrefix) {
		return startupKind
	}
	return Kind{Family: FamilyOther}
}
