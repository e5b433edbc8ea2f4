package analysis

import (
	"fmt"
	"strconv"

	"virtbench/internal/results"
	"virtbench/internal/units"
)

// OverheadPercentile is the percentile of a variant's per-instance cost
// that its overhead is stated at: what nineteen of twenty pods stay under.
const OverheadPercentile = 0.95

// Overhead is what one instance of an isolating variant costs a node
// beyond the baseline's (the workload's own, which a pod's requests
// already hold): what Kubernetes charges each pod of a RuntimeClass
// (overhead.podFixed).
type Overhead struct {
	Variant string `json:"variant"`
	// Handler is the CRI runtime handler the variant stands for
	// (results.Role.Handler).
	Handler string `json:"handler"`
	// MemoryBytes is the variant's PSS of an idle instance at
	// OverheadPercentile less the baseline's median; Memory and
	// BaselineMemory are the summaries it comes from.
	MemoryBytes    float64         `json:"memory_bytes"`
	Memory         results.Summary `json:"memory"`
	BaselineMemory float64         `json:"baseline_memory_bytes"`
	// CPUCores is likewise the idle CPU an instance keeps busy, in
	// cores; CPU is its summary (N 0 where not measured).
	CPUCores     float64         `json:"cpu_cores"`
	CPU          results.Summary `json:"cpu"`
	BaselineCPU  float64         `json:"baseline_cpu_cores"`
	NoBaseline   bool            `json:"no_baseline,omitempty"`
	Scenario     string          `json:"scenario"`
	Host         string          `json:"host"`
	RunStarted   string          `json:"run_started"`
	RunDirectory string          `json:"run_dir"`
}

// Overheads returns the overhead of every variant that stands for a
// runtime a pod runs with (a handler) and whose idle instance's memory
// was measured, in the order the variants first appear.
func (a *Analysis) Overheads() []Overhead {
	x := a.Index
	base := a.Index.Median(a.Baseline, results.MetricPSS)
	baseCPU := a.Index.Median(a.Baseline, results.MetricIdleCPU)
	var out []Overhead
	for _, v := range x.Variants(results.MetricPSS, true) {
		role := a.Roles[v]
		mem, ok := x.Single(v, results.MetricPSS)
		if role.Handler == "" || !ok {
			continue
		}
		p := a.Run.Provenance
		o := Overhead{Variant: v, Handler: role.Handler, Memory: mem, BaselineMemory: base, BaselineCPU: baseCPU, NoBaseline: a.Baseline == "",
			Scenario: a.Run.Status.Scenario, Host: fmt.Sprintf("%s (%s, %d cores, %s)", p.Hostname, p.CPUModel, p.Cores, units.Format(float64(p.MemoryBytes), "B")), RunStarted: a.Run.Status.Started.UTC().Format("2006-01-02T15:04:05Z"), RunDirectory: a.Run.Dir}
		o.MemoryBytes = max(mem.P95-base, 0)
		if cpu, ok := x.Single(v, results.MetricIdleCPU); ok {
			o.CPU, o.CPUCores = cpu, max(cpu.P95-baseCPU, 0)
		}
		out = append(out, o)
	}
	return out
}

// Nova is what an OpenStack Nova compute host's configuration takes from
// a VM variant's run: the memory to keep for the host
// (reserved_host_memory_mb), the VMM's own memory beside each guest's
// RAM, and the allocation ratios the capacity model's count implies
// (ram_allocation_ratio, cpu_allocation_ratio).
type Nova struct {
	Variant string `json:"variant"`
	// ReservedHostMemoryMB is the memory floor the capacity model keeps
	// free: max(20%, 2 GiB) of the host's.
	ReservedHostMemoryMB int64 `json:"reserved_host_memory_mb"`
	// OverheadBytes is the VMM's resident memory beside the guest's RAM
	// (mem.vmm_overhead), with its range; 0 where not measured.
	OverheadBytes float64 `json:"overhead_bytes"`
	OverheadLo    float64 `json:"overhead_lo"`
	OverheadHi    float64 `json:"overhead_hi"`
	// GuestRAMBytes is the RAM each VM was given, VCPUs its vCPUs.
	GuestRAMBytes float64 `json:"guest_ram_bytes"`
	VCPUs         int     `json:"vcpus"`
	// Instances is the capacity model's count of idle VMs on this host,
	// and the ratios what they are given over what the host has:
	// guest RAM over the memory Nova schedules (total less reserved),
	// vCPUs over CPUs.
	Instances          int     `json:"instances"`
	RAMAllocationRatio float64 `json:"ram_allocation_ratio"`
	CPUAllocationRatio float64 `json:"cpu_allocation_ratio"`
}

// Nova returns the Nova figures of every VM variant with a capacity on
// this host and its guest RAM recorded.
func (a *Analysis) Nova() []Nova {
	p := a.Run.Provenance
	memory := p.MemoryBytes
	if p.MemoryLimitBytes > 0 {
		memory = min(memory, p.MemoryLimitBytes)
	}
	reserved := results.DensityFloor(memory)
	var out []Nova
	for _, c := range a.HereCapacity() {
		if a.Roles[c.Variant].Class != results.ClassVM {
			continue
		}
		ram, ok := a.Index.Single(c.Variant, results.MemPartPrefix+"guest_ram_configured")
		if !ok || memory <= reserved || p.Cores <= 0 {
			continue
		}
		n := Nova{Variant: c.Variant, ReservedHostMemoryMB: reserved >> 20, GuestRAMBytes: ram.Median, VCPUs: 1, Instances: c.Idle}
		if cpus, err := strconv.Atoi(a.Run.Status.Outcome.Variants[c.Variant].Options["cpus"]); err == nil && cpus > 0 {
			n.VCPUs = cpus
		}
		if o, ok := a.Index.Single(c.Variant, results.MemPartPrefix+"vmm_overhead"); ok {
			n.OverheadBytes = o.Median
			n.OverheadLo, n.OverheadHi = o.Range()
		}
		n.RAMAllocationRatio = float64(c.Idle) * ram.Median / float64(memory-reserved)
		n.CPUAllocationRatio = float64(c.Idle*n.VCPUs) / float64(p.Cores)
		out = append(out, n)
	}
	return out
}
