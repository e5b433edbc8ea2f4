package results

// DensityMemorySample bounds the instances whose memory a density step
// reads. smaps_rollup, the sampler's costly read (50-100 µs of kernel time
// per process on a 2-core VM), is read for every instance up to this count
// and for a uniform random sample of this many beyond it: a step's
// instances are alike, and their mean PSS from the sample is within a
// fraction of a percent of the mean over all. Every instance's tasks and
// liveness are still read (/proc/PID/stat, a tenth of the cost), and what
// memory capacity is decided by, MemAvailable's drop, is host-wide. The
// sampler's time at a sweep's top so stays bounded.
const DensityMemorySample = 512

// Density metrics, recorded with Instances set to the count after each step.
const (
	MetricDensityStartup = "density.startup" // start latency of each new instance
	// MetricDensityMarginal is the start of the step's last instance,
	// started alone once the others of the step were up: what one more
	// instance costs to start on a host already holding the rest.
	MetricDensityMarginal = "density.marginal_startup"
	MetricDensityPSS      = "density.pss_per_inst" // summed PSS / instances read
	// MetricDensityPSSSampled is how many instances a step's PSS was read
	// from: every one, or a random sample (DensityMemorySample).
	MetricDensityPSSSampled = "density.pss_sampled"
	MetricDensityMemDrop    = "density.memdrop_per_inst"
	MetricDensityAvailable  = "density.mem_available"
	MetricDensityHostCPU    = "density.host_cpu" // percent of all CPUs during the step's idle window
	// MetricDensityCPU is the CPU one idle instance costs the host, in
	// cores, over the step's idle window: the larger of what the
	// instances' own processes used and what the host's CPUs were busy
	// above their baseline before the sweep, per instance (the kernel's
	// work for the instances, as timers and interrupts, shows only in
	// the latter). Its label source says which.
	MetricDensityCPU     = "density.cpu_per_inst"
	MetricDensityTasks   = "density.tasks_per_inst" // tasks (PIDs) per instance
	MetricDensityReached = "density.reached"        // the count reached, once per driver
	MetricDensityFloor   = "density.floor"          // the MemAvailable floor, once per driver
	// MetricDensityTeardown is the time to stop every instance of the
	// sweep, once per driver, with Instances set to how many stopped.
	MetricDensityTeardown = "density.teardown"
	MetricSamplerDuration = "sampler.duration" // time to sample a density step's instances once
	MetricHarnessRSS      = "harness.rss"      // virtbench's own resident memory at a density step
)

// MetricStartFloor is the floor of a variant's start, as its driver
// measures it with nothing of virtbench's in it (drivers.Floorer: QEMU
// started bare to its first QMP answer), a few values per variant.
const MetricStartFloor = "start_floor"

// Start storm metrics, recorded with Instances set to the storm's count:
// every instance of the storm started at once (scenarios.Scenario.Storm).
const (
	// MetricStormStartup is each instance's start to READY in the storm.
	MetricStormStartup = "storm.startup"
	// MetricStormRate is the instances that became READY over the time
	// from the storm's first start to its last READY.
	MetricStormRate = "storm.rate"
	// MetricStormRatePerCore is MetricStormRate over the host's CPUs.
	MetricStormRatePerCore = "storm.rate_per_core"
)

// KSM metrics: once per trial (or density step) of a variant with
// host.ksm=on, after merging settled.
const (
	MetricKSMShared  = "ksm_pages_shared"   // pages KSM keeps, one per group of identical pages
	MetricKSMSharing = "ksm_pages_sharing"  // pages mapped onto them: the pages saved
	MetricKSMSaved   = "ksm_saved_per_inst" // bytes saved per instance: pages_sharing × page size ÷ instances
	MetricKSMSettle  = "ksm_settle"         // time from the turn-on to merging settled (or the limit)
)

// Network metrics.
const (
	MetricNetRPS = "net.http_rps"
	MetricNetP50 = "net.http_p50"
	MetricNetP99 = "net.http_p99"
)

// Load metrics: a workload's load profile (loadgen.Profile), sent to
// each instance in the open model, measured over its window after the
// warm-up; per instance, but the generator's CPU per trial.
const (
	MetricLoadAchieved  = "load.achieved"
	MetricLoadP50       = "load.p50"
	MetricLoadP99       = "load.p99"
	MetricLoadP999      = "load.p999"
	MetricLoadErrors    = "load.errors"
	MetricLoadRequests  = "load.requests"
	MetricLoadSLOMet    = "load.slo_met"
	MetricLoadGenCPU    = "load.generator_cpu"
	MetricLoadGenMemory = "load.generator_memory"
	MetricLoadHostCPU   = "load.host_cpu"
	// An objective sweep's answer (bench's objective): the largest count
	// whose every window met the objective, with the first failing count
	// (LabelFirstFailure) and what bound it (LabelStopLimit,
	// LabelStopReason); and how many steps the search took.
	MetricObjectiveInstances = "objective.instances"
	MetricObjectiveSteps     = "objective.steps"
	// The objective sweep's load and objective, as the scenario gave
	// them: the rate offered to each instance, and the p99 bound.
	MetricObjectiveRate = "objective.rate"
	MetricObjectiveP99  = "objective.p99"
)

// The host's budgets: what of a host instances may use, the same for the
// runner's guards (which keep a run within them) and the reports'
// capacity model (which counts the instances that fit within them).
const (
	// CPUCap is the share of the host's CPUs that instances may keep busy.
	CPUCap = 0.80
	// PidsCap and DiskCap are the shares of the host's pid limit and free
	// disk that instances may take, leaving the host room to fork and write.
	PidsCap = 0.90
	DiskCap = 0.90
)

// ObjectiveTolerance is the share of the largest passing count within
// which an objective sweep ends its bisection: the knee is found to
// within it (and within one instance).
const ObjectiveTolerance = 0.05

// DensityFloor returns the MemAvailable a density sweep keeps free by
// default, and the capacity model's memory budget leaves free: the larger
// of 20% of the host's memory and 2 GiB.
func DensityFloor(total int64) int64 {
	const fraction, least = 0.20, 2 << 30
	return max(int64(fraction*float64(total)), least)
}
