package results

import (
	"fmt"
	"strings"
	"sync"

	"virtbench/internal/measure"
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

// Better is the direction in which a metric improves (measure.Better).
type Better = measure.Better

// The directions.
const (
	NoBetter       = measure.NoBetter
	HigherIsBetter = measure.HigherIsBetter
	LowerIsBetter  = measure.LowerIsBetter
)

// Dimension is the side of performance a speed stands for
// (measure.Dimension).
type Dimension = measure.Dimension

// The dimensions of performance (measure.Dimension).
const (
	NoDimension       = measure.NoDimension
	DimensionCPU      = measure.CPU
	DimensionMemory   = measure.Memory
	DimensionSyscall  = measure.Syscall
	DimensionDiskIOPS = measure.DiskIOPS
	DimensionDiskBW   = measure.DiskBW
	DimensionNetwork  = measure.Network
	DimensionServer   = measure.Server
)

// MetricKind is what a metric is: its family, its unit, which way it
// improves (NoBetter for an amount that is neither), the dimension of
// performance a speed stands for, whether it is measured once by design,
// and what it means. It is declared once, here for the runner's metrics,
// by each workload for its results (measure.Measure, through
// DeclareWorkload) and by each driver for its own (drivers.Info.Measures,
// through Declare), and a run records the kinds it used in run.json
// (Vocabulary): summaries, comparisons, claims and charts read it from
// there.
type MetricKind struct {
	Family    Family    `json:"family"`
	Unit      string    `json:"unit"`
	Better    Better    `json:"better"`
	Dimension Dimension `json:"dimension,omitempty"`
	// Once marks a metric measured once per run, variant or density step
	// by design (bytes on disk, the count a sweep reached): a single value
	// is not a weak sample, and its summary says nothing of sample counts.
	Once bool `json:"once,omitempty"`
	// Signed marks a metric whose values may be negative: a MemAvailable
	// drop within the host's noise.
	Signed bool `json:"signed,omitempty"`
	// Min is the least value the metric can physically take, where there
	// is one (a start takes a microsecond at least, a process holds a page
	// of memory at least): a sample below it is forged or broken, and
	// refused (Sample.Check).
	Min float64 `json:"min,omitempty"`
	// Doc says in one line what the metric is.
	Doc string `json:"doc"`
}

// Speed reports whether the metric is a speed: a performance metric
// that improves one way or the other.
func (k MetricKind) Speed() bool { return k.Family == FamilyPerformance && k.Better != NoBetter }

// The kinds most metrics share, with their docs added per metric.
func startupKind(doc string) MetricKind {
	return MetricKind{Family: FamilyStartup, Unit: "sec", Better: LowerIsBetter, Doc: doc}
}

func memoryKind(doc string) MetricKind {
	return MetricKind{Family: FamilyMemory, Unit: "B", Better: LowerIsBetter, Doc: doc}
}

func diskKind(doc string) MetricKind {
	return MetricKind{Family: FamilyDisk, Unit: "B", Better: LowerIsBetter, Once: true, Doc: doc}
}

func densityKind(unit string, better Better, doc string) MetricKind {
	return MetricKind{Family: FamilyDensity, Unit: unit, Better: better, Once: true, Doc: doc}
}

// The least a start and an instance's memory can physically be (Kind.Min):
// no process starts within a microsecond, and a running one holds a page
// (its stack) of its own at least.
const (
	MinStart  = 1e-6
	MinMemory = 4096
)

// kinds declares the runner's own metrics. Workloads declare theirs
// (DeclareWorkload), drivers theirs (Declare).
var kinds = map[string]MetricKind{
	MetricStartup:     MetricKind{Family: FamilyStartup, Unit: "sec", Better: LowerIsBetter, Min: MinStart, Doc: "from the driver's first step for an instance to its READY on the host"},
	MetricTeardown:    startupKind("from Stop to everything of the instance released"),
	MetricGuestBoot:   startupKind("how long a VM's virtual CPU had run at READY: firmware, kernel and init"),
	MetricGuestUptime: startupKind("a VM kernel's own uptime at READY, which misses the boot before its clock ticks"),

	MetricRSS:         MetricKind{Family: FamilyMemory, Unit: "B", Better: LowerIsBetter, Min: MinMemory, Doc: "resident memory of the instance's host processes"},
	MetricPSS:         MetricKind{Family: FamilyMemory, Unit: "B", Better: LowerIsBetter, Min: MinMemory, Doc: "proportional set size of the instance's host processes: shared pages divided among their users"},
	MetricUSS:         MetricKind{Family: FamilyMemory, Unit: "B", Better: LowerIsBetter, Min: MinMemory, Doc: "memory only the instance's processes use"},
	MetricPSSAnon:     memoryKind("the anonymous part of the PSS: the instance's own memory, no file cache"),
	MetricPSSOwn:      memoryKind("the instance's own memory: the anonymous and shmem (memfd, tmpfs) parts of its PSS; file pages, which instances share and the host holds once, left out"),
	MetricCgroupMem:   memoryKind("the instance cgroup's memory usage without page cache"),
	MetricHostMemDrop: MetricKind{Family: FamilyMemory, Unit: "B", Better: LowerIsBetter, Signed: true, Doc: "the host's MemAvailable drop per instance of the trial"},
	MetricDaemonPSS:   MetricKind{Family: FamilyMemory, Unit: "B", Better: LowerIsBetter, Doc: "PSS of the daemons the driver's instances need (libvirtd and virtlogd; dockerd and containerd), held once by the host whatever the instance count: a shared cost, in no instance's figures"},
	MetricHostMemAvailable: MetricKind{Family: FamilyMemory, Unit: "B", Better: NoBetter, Once: true,
		Doc: "the host's MemAvailable before a trial's instances (or a density sweep's) started: what the capacity model's memory budget starts from"},
	MetricHostMemNoise: MetricKind{Family: FamilyMemory, Unit: "B", Better: NoBetter, Once: true,
		Doc: "the largest MemAvailable drop the host showed with no instance over a trial's settle time: smaller drops are noise"},
	// A VM's resident memory, split by the driver (drivers.MemoryParter).
	MetricMemParts:                         memoryKind("a failure to split a VM's memory into its parts"),
	MemPartPrefix + "guest_ram_configured": MetricKind{Family: FamilyMemory, Unit: "B", Better: NoBetter, Doc: "the guest RAM a VM was given"},
	MemPartPrefix + "guest_ram_resident":   memoryKind("the guest RAM a VM has touched, resident on the host"),
	MemPartPrefix + "vmm_overhead":         memoryKind("the VMM's own resident memory beside the guest's RAM"),

	MetricIdleSettle: MetricKind{Family: FamilyIdle, Unit: "sec", Better: LowerIsBetter, Doc: "how long an idle instance's CPU use kept falling before its idle CPU was read"},
	MetricIdleCPU:    MetricKind{Family: FamilyIdle, Unit: "cores", Better: LowerIsBetter, Doc: "CPU an idle instance's processes keep busy once it settled"},
	MetricTasks:      MetricKind{Family: FamilyIdle, Unit: "tasks", Better: LowerIsBetter, Doc: "tasks (PIDs: processes and threads) an instance holds"},

	MetricImageApparent:         diskKind("the shared image's apparent size"),
	MetricImageAllocated:        diskKind("the shared image's allocated size (st_blocks), shared layers counted once"),
	MetricToolsApparent:         diskKind("the tools layer's apparent size (fio, iperf3, Redis, nginx and their libraries), shared by every instance of a tools workload"),
	MetricToolsAllocated:        diskKind("the tools layer's allocated size, a read-only layer (a VM's tools disk) counted once for every instance"),
	MetricServiceImageApparent:  diskKind("a service's image unpacked (its layers applied), apparent size, shared by every instance of the service"),
	MetricServiceImageAllocated: diskKind("a service's image unpacked, allocated size: a read-only lower layer counted once for every instance"),
	MetricWritableApparent:      diskKind("an instance's writable layer, apparent size, after its workload"),
	MetricWritableAllocated:     diskKind("an instance's writable layer, allocated size, after its workload"),

	MetricNetRPS: MetricKind{Family: FamilyPerformance, Unit: "op/s", Better: HigherIsBetter, Doc: "HTTP requests per second the host drove over the instance's network path"},
	MetricNetP50: {Family: FamilyPerformance, Unit: "sec", Better: LowerIsBetter, Doc: "median HTTP request latency over the instance's network path"},
	MetricNetP99: {Family: FamilyPerformance, Unit: "sec", Better: LowerIsBetter, Doc: "99th percentile HTTP request latency over the instance's network path"},

	MetricLoadAchieved:       {Family: FamilyPerformance, Unit: "op/s", Better: HigherIsBetter, Doc: "successful answers per second to the load profile's requests, sent at its rate in the open model, over its window"},
	MetricLoadP50:            {Family: FamilyPerformance, Unit: "sec", Better: LowerIsBetter, Doc: "median latency of the load profile's requests over its window"},
	MetricLoadP99:            {Family: FamilyPerformance, Unit: "sec", Better: LowerIsBetter, Doc: "99th percentile latency of the load profile's requests over its window (weak from fewer than 1000 requests)"},
	MetricLoadP999:           {Family: FamilyPerformance, Unit: "sec", Better: LowerIsBetter, Doc: "99.9th percentile latency of the load profile's requests over its window"},
	MetricLoadErrors:         {Family: FamilyPerformance, Unit: "%", Better: LowerIsBetter, Doc: "share of the load profile's requests that failed (an error, a timeout, a status other than 2xx or 3xx)"},
	MetricLoadRequests:       {Family: FamilyPerformance, Unit: "requests", Better: NoBetter, Doc: "requests the load profile sent to the instance in its window"},
	MetricLoadSLOMet:         {Family: FamilyPerformance, Unit: "%", Better: NoBetter, Doc: "100 where the instance's window met the load profile's objective (at least 99% of its rate answered, errors and p99 within bounds), else 0: its mean is the share of windows that met it"},
	MetricObjectiveInstances: densityKind("instances", HigherIsBetter, "the most instances whose every window met the load profile's objective, all loaded at once (an objective sweep's knee)"),
	MetricObjectiveSteps:     densityKind("steps", NoBetter, "the steps an objective sweep took to find its knee: growing, then bisecting"),
	MetricObjectiveRate:      densityKind("op/s", NoBetter, "the requests per second an objective sweep offered each instance (the load profile's rate)"),
	MetricObjectiveP99:       densityKind("sec", NoBetter, "the p99 bound of an objective sweep's objective"),
	MetricLoadHostCPU:        {Family: FamilyPerformance, Unit: "%", Better: NoBetter, Doc: "the host's busy CPUs, in percent of all, while a trial's load profile was sent to every instance"},
	MetricLoadGenCPU:         {Family: FamilyHarness, Unit: "cores", Better: LowerIsBetter, Doc: "CPU the load generators (a process per instance, in a cgroup of their own) used while they sent a load profile to every instance, on the host they share with the instances"},
	MetricLoadGenMemory:      {Family: FamilyHarness, Unit: "B", Better: LowerIsBetter, Doc: "the load generators' memory while they sent a load profile: the sum of each process's largest resident set"},

	MetricDensityStartup:    MetricKind{Family: FamilyDensity, Unit: "sec", Better: LowerIsBetter, Doc: "start latency of each new instance of a density step"},
	MetricDensityMarginal:   densityKind("sec", LowerIsBetter, "the start of a step's last instance, started alone on a host holding the rest"),
	MetricDensityPSS:        densityKind("B", LowerIsBetter, "mean PSS of an instance at a density step, over the instances read (density.pss_sampled)"),
	MetricDensityPSSSampled: densityKind("instances", NoBetter, fmt.Sprintf("instances whose PSS a density step read: every one, or a random sample of %d beyond that", DensityMemorySample)),
	MetricDensityMemDrop:    MetricKind{Family: FamilyDensity, Unit: "B", Better: LowerIsBetter, Once: true, Signed: true, Doc: "the host's MemAvailable drop per instance at a density step"},
	MetricDensityAvailable:  densityKind("B", HigherIsBetter, "the host's MemAvailable at a density step"),
	MetricDensityHostCPU:    densityKind("%", LowerIsBetter, "the host's busy CPUs, in percent of all, during a step's idle window"),
	MetricDensityCPU:        densityKind("cores", LowerIsBetter, "CPU one idle instance costs the host at a density step"),
	MetricDensityTasks:      densityKind("tasks", LowerIsBetter, "tasks per instance at a density step"),
	MetricDensityReached:    densityKind("instances", HigherIsBetter, "the instance count a density sweep reached"),
	MetricDensityFloor:      densityKind("B", NoBetter, "the MemAvailable floor a density sweep kept"),
	MetricDensityTeardown:   densityKind("sec", LowerIsBetter, "the time to stop every instance of a density sweep"),
	MetricStartFloor:        MetricKind{Family: FamilyStartup, Unit: "sec", Better: LowerIsBetter, Min: MinStart, Doc: "the floor of the variant's start, as its driver measures it with nothing of virtbench's in it (QEMU started bare, with the VM's machine, accelerator, CPU and RAM, paused, to its first QMP answer)"},
	MetricStormStartup:      MetricKind{Family: FamilyStartup, Unit: "sec", Better: LowerIsBetter, Min: MinStart, Doc: "from the driver's first step for an instance to its READY, with every instance of the storm started at once"},
	MetricStormRate:         MetricKind{Family: FamilyStartup, Unit: "inst/s", Better: HigherIsBetter, Doc: "instances of a start storm READY per second, from its first start to its last READY"},
	MetricStormRatePerCore:  MetricKind{Family: FamilyStartup, Unit: "inst/s/core", Better: HigherIsBetter, Doc: "a start storm's instances READY per second, per host CPU"},
	MetricKSMShared:         MetricKind{Family: FamilyDensity, Unit: "pages", Better: NoBetter, Doc: "pages KSM keeps, one per group of identical pages"},
	MetricKSMSharing:        MetricKind{Family: FamilyDensity, Unit: "pages", Better: HigherIsBetter, Doc: "pages KSM mapped onto the kept ones: the pages saved"},
	MetricKSMSaved:          MetricKind{Family: FamilyDensity, Unit: "B", Better: HigherIsBetter, Doc: "bytes KSM saved per instance"},
	MetricKSMSettle:         MetricKind{Family: FamilyDensity, Unit: "sec", Better: LowerIsBetter, Doc: "from turning KSM's fast scan on to merging settled (or the limit)"},

	MetricSamplerDuration: MetricKind{Family: FamilyHarness, Unit: "sec", Better: LowerIsBetter, Once: true, Doc: fmt.Sprintf("virtbench's own time to sample a density step once: every instance's tasks, and the memory of all or a random sample of %d", DensityMemorySample)},
	MetricHarnessRSS:      MetricKind{Family: FamilyHarness, Unit: "B", Better: LowerIsBetter, Once: true, Doc: "virtbench's own resident memory at a density step, with every instance of the step up, read with its free heap returned to the OS as when the host's memory is read"},
	MetricTrialExcluded:   MetricKind{Family: FamilyHarness, Unit: "", Better: NoBetter, Once: true, Doc: "a trial whose samples are kept but not summarised, and why"},
}

// declared are the metrics drivers and workloads declare for what they
// report (drivers.Info.Measures, a workload's Measures), by name, the
// workloads (DeclareWorkload) and the drivers' labels (DeclareLabel).
var declared = struct {
	sync.RWMutex
	m         map[string]MetricKind
	workloads map[string]Workload
	labels    map[string]Label
}{m: map[string]MetricKind{}, workloads: map[string]Workload{}, labels: map[string]Label{}}

// Declare registers the kind of a metric a driver reports of itself
// (a snapshot's creation time): drivers.Register calls it for the
// driver's Measures, DeclareWorkload for a workload's. It panics when the
// name is empty or already means something else, as a registry does.
func Declare(metric string, k MetricKind) {
	if metric == "" {
		panic("results: Declare of a metric without a name")
	}
	if old, ok := Linked().metric(metric); ok && old != k {
		panic(fmt.Sprintf("results: metric %q declared twice, as %+v and %+v", metric, old, k))
	}
	declared.Lock()
	defer declared.Unlock()
	declared.m[metric] = k
}

// prefixKind returns the kind of a start phase (PhaseMetricPrefix) or a
// boot stage (BootMetricPrefix): results declares those by their prefix,
// whatever phase a driver names.
func prefixKind(metric string) (MetricKind, bool) {
	if k, ok := limitKind(metric); ok {
		return k, true
	}
	switch {
	case strings.HasPrefix(metric, PhaseMetricPrefix):
		return startupKind("a start phase: from the previous phase's end (or the start's beginning) to this one's"), true
	case strings.HasPrefix(metric, BootMetricPrefix):
		return startupKind("when a VM boot stage's kernel log line appeared, on the vCPU's time line"), true
	}
	return MetricKind{}, false
}
