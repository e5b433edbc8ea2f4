package results

import (
	"sort"
	"time"
)

// Provenance describes the host and software a run measured.
type Provenance struct {
	Time        time.Time `json:"time"`
	Hostname    string    `json:"hostname"`
	Kernel      string    `json:"kernel"`
	OS          string    `json:"os"`
	Virtualized string    `json:"virtualization,omitempty"`
	CPUModel    string    `json:"cpu_model"`
	Cores       int       `json:"cores"`
	MemoryBytes int64     `json:"memory_bytes"`
	// MemAvailableBytes is the host's MemAvailable when the run began:
	// what instances may take, down to the floor, of a host that already
	// runs other things.
	MemAvailableBytes int64 `json:"mem_available_bytes,omitempty"`
	// MemoryLimitBytes is the memory limit of virtbench's cgroup (v1
	// memory.limit_in_bytes, v2 memory.max: the smallest of its own and
	// its parents'), 0 where none is set, and MemoryLimitAt the cgroup
	// that sets it. MemAvailableBytes is then at most the limit less the
	// cgroup's working set.
	MemoryLimitBytes int64  `json:"memory_limit_bytes,omitempty"`
	MemoryLimitAt    string `json:"memory_limit_at,omitempty"`
	// CPULimitCores is the CPU quota of virtbench's cgroup in cores (v1
	// cpu.cfs_quota_us over cpu.cfs_period_us, v2 cpu.max), where it is
	// less than the CPUs it may run on, and CPULimitAt the cgroup that
	// sets it.
	CPULimitCores float64 `json:"cpu_limit_cores,omitempty"`
	CPULimitAt    string  `json:"cpu_limit_at,omitempty"`
	CgroupVersion string  `json:"cgroup_version"`
	KSM           string  `json:"ksm"`
	KVM           string  `json:"kvm"`
	// Mitigations summarises the host kernel's CPU vulnerability
	// mitigations (guest.Mitigations); instances with a kernel of their
	// own carry theirs as the label "mitigations".
	Mitigations string `json:"mitigations,omitempty"`
	// PidsMax is how many tasks (processes and threads) the host can
	// hold: the smaller of kernel.pid_max and kernel.threads-max.
	PidsMax int64 `json:"pids_max,omitempty"`
	// TasksInUse is how many tasks ran on the host when the run began.
	TasksInUse int64 `json:"tasks_in_use,omitempty"`
	// DiskFreeBytes is the free space, when the run began, of the
	// filesystem that holds the instances' writable layers.
	DiskFreeBytes int64             `json:"disk_free_bytes,omitempty"`
	Tools         map[string]string `json:"tools"`
	Virtbench     string            `json:"virtbench_version"`
	Go            string            `json:"go_version"`
	Scenario      string            `json:"scenario,omitempty"`
	ScenarioHash  string            `json:"scenario_hash,omitempty"`
	ScenarioFile  string            `json:"scenario_source,omitempty"`
	// Calibration is how fast and how quiet the host was over the run;
	// nil in runs of a virtbench from before 2026-12 (unknown, never 0).
	Calibration *Calibration `json:"calibration,omitempty"`
}

// MaxFailureLines bounds how many failures an Outcome lists; the rest are
// counted (every one is a sample in samples.jsonl).
const MaxFailureLines = 50

// Outcome summarises what a run did beyond its samples.
type Outcome struct {
	// Skipped maps unavailable variants to the reason.
	Skipped map[string]string `json:"skipped,omitempty"`
	// Failures lists failed measurements, one line each, the first
	// MaxFailureLines of them; FailureCount counts them all.
	Failures     []string `json:"failures,omitempty"`
	FailureCount int      `json:"failure_count,omitempty"`
	// Trials counts trials run (warmups included).
	Trials int `json:"trials"`
	// RepsCapped lists, under reps: auto, the trials that reached the
	// most repetitions before their figures were known well enough, each
	// with how well they were known.
	RepsCapped []string `json:"reps_capped,omitempty"`
	// Labels are what drivers reported about how they ran, per variant.
	Labels map[string]map[string]string `json:"labels,omitempty"`
	// Variants records each variant that ran: its driver and every
	// setting it ran with, defaults included.
	Variants map[string]VariantRecord `json:"variants,omitempty"`
	// Density says, per driver and workload, how far a density sweep got
	// and why it stopped.
	Density map[string]string `json:"density,omitempty"`
	// Virtualization explains each variant that ran: its driver's kind
	// of virtualization (drivers.Info.Virtualization).
	Virtualization map[string]string `json:"virtualization,omitempty"`
	// Services says, per service workload, which image ran (its source
	// and manifest digest) and how its readiness was probed from the
	// host: the probe, its poll interval, the network path.
	Services map[string]string `json:"services,omitempty"`
}

// VariantRecord is what a run records of a variant.
type VariantRecord struct {
	Driver  string            `json:"driver"`
	Options map[string]string `json:"options,omitempty"`
	// Host are the host settings the variant ran with (host.ksm).
	Host map[string]string `json:"host,omitempty"`
	// Role is what the variant is to the reports.
	Role Role `json:"role"`
}

// Roles returns each variant's role, by name.
func (o Outcome) Roles() map[string]Role {
	out := make(map[string]Role, len(o.Variants))
	for name, v := range o.Variants {
		out[name] = v.Role
	}
	return out
}

// Baseline returns the name of the baseline variant, or "" when none ran.
func (o Outcome) Baseline() string {
	for name, v := range o.Variants {
		if v.Role.Baseline {
			return name
		}
	}
	return ""
}

// Virtualizations returns each variant that ran with its kind of
// virtualization, sorted by name.
func (o Outcome) Virtualizations() [][2]string {
	var out [][2]string
	for d, k := range o.Virtualization {
		out = append(out, [2]string{d, k})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// Class is the isolation a driver stands for.
type Class string

// The classes.
const (
	ClassNone    Class = "none"             // a plain process: the baseline
	ClassOSLevel Class = "OS-level"         // containers on the host's kernel
	ClassSandbox Class = "sandboxed kernel" // a user-space kernel that serves the container's system calls
	ClassVM      Class = "VM"               // a guest kernel on a VMM (emulated or hardware-assisted)
	// ClassApplication is a program built for another system's interface,
	// whose calls a layer translates (Wine): no isolation beyond a process.
	ClassApplication Class = "application virtualization"
)

// Calibration is how fast and how quiet the host was over a run: a short
// fixed probe at its start and its end (Probe), and what the host did
// meanwhile. The analysis judges from it whether figures of the host can
// be set beside another's.
type Calibration struct {
	Start *Probe `json:"start,omitempty"`
	End   *Probe `json:"end,omitempty"`
	// StealPercent is the CPU time a hypervisor gave other guests, in
	// percent of the host's, over the run.
	StealPercent float64 `json:"steal_percent"`
	// Runnable and Load1 are the runnable tasks (/proc/stat
	// procs_running) and the one-minute load, read every few seconds
	// over the run (its own instances among them).
	Runnable Spread `json:"procs_running"`
	Load1    Spread `json:"load1"`
}

// Probe is one calibration probe of the host: SHA-256 operations per
// second on one core, bytes copied per second, seconds per getppid(2)
// call, each with its noise (the spread of three windows over their
// median); the runnable tasks besides the probe while it ran, the load
// and the CPUs' mean clock.
type Probe struct {
	At             time.Time `json:"at"`
	CPUOpsPerSec   float64   `json:"cpu_ops_per_sec"`
	CPUNoise       float64   `json:"cpu_noise"`
	MemBytesPerSec float64   `json:"mem_bytes_per_sec"`
	MemNoise       float64   `json:"mem_noise"`
	SyscallSec     float64   `json:"syscall_sec"`
	SyscallNoise   float64   `json:"syscall_noise"`
	OthersRunnable float64   `json:"others_runnable"`
	Load1          float64   `json:"load1"`
	CPUMHz         float64   `json:"cpu_mhz,omitempty"`
}

// Spread is the range and mean of N readings.
type Spread struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	Max  float64 `json:"max"`
	N    int     `json:"n"`
}
