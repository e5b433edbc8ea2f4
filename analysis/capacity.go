package analysis

import (
	"fmt"
	"math"
	"strconv"

	"virtbench/internal/results"
	"virtbench/internal/units"
)

// cores returns the CPUs instances may keep busy: CPUs, or the quota.
func (h HostSize) cores() float64 {
	if h.CPULimit > 0 && h.CPULimit < float64(h.CPUs) {
		return h.CPULimit
	}
	return float64(h.CPUs)
}

// Resource names, as the capacity model names the binding one.
const (
	ResMemory = results.ResourceMemory
	ResCPU    = results.ResourceCPU
	ResPids   = results.ResourcePids
	ResDisk   = results.ResourceDisk
)

// Cost is what one instance takes of one resource, with a range from the
// measurement's confidence interval (or from its values where there are
// too few for one).
type Cost struct {
	Value float64 `json:"value"`
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Unit  string  `json:"unit"`
	// Source says which measurement it is.
	Source string `json:"source"`
}

// Limit is how many instances one resource allows.
type Limit struct {
	Resource string  `json:"resource"`
	Budget   float64 `json:"budget"`
	Cost     Cost    `json:"per_instance"`
	// Count is Budget / Cost.Value; Lo and Hi use the dearer and the
	// cheaper end of the cost's range. Unbounded (-1) when the cost is 0.
	Count int `json:"count"`
	Lo    int `json:"lo"`
	Hi    int `json:"hi"`
}

// Unbounded marks a count that a resource does not limit (a cost of 0).
const Unbounded = -1

// Capacity is how many instances of one variant fit on a host: the
// minimum over resources of budget ÷ cost, for idle instances and for busy
// ones (each keeping one CPU busy).
type Capacity struct {
	Host    string `json:"host"`
	Variant string `json:"variant"`
	// Idle is how many idle instances fit, between IdleLo and IdleHi;
	// Binding names the resource that runs out first.
	Idle    int    `json:"idle"`
	IdleLo  int    `json:"idle_lo"`
	IdleHi  int    `json:"idle_hi"`
	Binding string `json:"binding"`
	// Busy is how many fit when each keeps one CPU busy; BusyBinding
	// names the resource that runs out first then.
	Busy        int    `json:"busy"`
	BusyBinding string `json:"busy_binding"`
	// Limits are every resource measured, in the order memory, CPU,
	// pids, disk; Unmeasured names the resources of the model the run has
	// no cost for, left out of the minimum.
	Limits     []Limit  `json:"limits"`
	Unmeasured []string `json:"unmeasured,omitempty"`
	// Objective is how many instances, each sent the workload's load
	// profile, met its objective on the host that ran an objective
	// sweep; nil elsewhere and where none ran.
	Objective *Objective `json:"objective,omitempty"`
}

// Objective is an objective sweep's answer: the most instances whose
// every window met the load profile's objective (Instances, also Lo) and
// the smallest count found failing it (Hi; Instances where none failed),
// what bound it, and the measured p99 and achieved rate per instance at
// that count.
type Objective struct {
	Workload  string `json:"workload"`
	Instances int    `json:"instances"`
	Lo        int    `json:"lo"`
	Hi        int    `json:"hi"`
	Binding   string `json:"binding"`
	Why       string `json:"why"`
	// Rate and P99 are the median achieved rate (per second) and p99
	// (seconds) of an instance's window at Instances; 0 where none
	// passed.
	Rate  float64 `json:"rate"`
	P99   float64 `json:"p99"`
	Steps int     `json:"steps"`
	// Offered and SLOP99 are the load profile's rate per instance and
	// its objective's p99 bound.
	Offered float64 `json:"offered_rate"`
	SLOP99  float64 `json:"slo_p99"`
}

// objectiveOf returns variant's objective sweep's answer (its first
// workload's, where several ran one), or nil.
func objectiveOf(x *Index, variant string) *Objective {
	ss := x.Of(variant, results.MetricObjectiveInstances)
	if len(ss) == 0 {
		return nil
	}
	s := ss[0]
	o := &Objective{Workload: s.Workload, Instances: int(s.Median), Lo: int(s.Median), Binding: s.Labels[results.LabelStopLimit], Why: s.Labels[results.LabelStopReason]}
	o.Hi, _ = strconv.Atoi(s.Labels[results.LabelFirstFailure])
	if o.Hi == 0 {
		o.Hi = o.Instances
	}
	at := func(metric string) float64 {
		for _, m := range x.Of(variant, metric) {
			if m.Workload == s.Workload && m.Instances == o.Instances {
				return m.Median
			}
		}
		return 0
	}
	o.Rate, o.P99 = at(results.MetricLoadAchieved), at(results.MetricLoadP99)
	once := func(metric string) float64 {
		for _, m := range x.Of(variant, metric) {
			if m.Workload == s.Workload {
				return m.Median
			}
		}
		return 0
	}
	o.Steps, o.Offered, o.SLOP99 = int(once(results.MetricObjectiveSteps)), once(results.MetricObjectiveRate), once(results.MetricObjectiveP99)
	return o
}

// costOf returns the cost of a summary: its median with its confidence
// interval, or the values' range where there are too few values for one
// (stats.Summary.Range).
func costOf(s results.Summary, source string) Cost {
	lo, hi := s.Range()
	return Cost{Value: s.Median, Lo: lo, Hi: hi, Unit: s.Unit, Source: source}
}

// memoryCost is the host memory one more idle instance takes, and what
// the instances share and the host holds once (file pages: a binary, a
// kernel image QEMU maps, a template's RAM file). From a density sweep:
// its MemAvailable drop per instance at its largest count, where the
// shared pages were held before the sweep. Else the larger of an idle
// instance's own memory (the anonymous and shmem part of its PSS, where
// recorded: shared pages are what the rest of its PSS is, once) and the
// MemAvailable drop of multi-instance trials; for runs that recorded no
// own memory, the PSS.
func memoryCost(x *Index, variant string) (c Cost, shared float64, ok bool) {
	if s, ok := x.Largest(variant, results.MetricDensityMemDrop); ok {
		return costOf(s, fmt.Sprintf("MemAvailable drop per instance at %d instances (density sweep)", s.Instances)), 0, true
	}
	pss, okP := x.Idle(variant, results.MetricPSS, 1)
	own, okO := x.Idle(variant, results.MetricPSSOwn, 1)
	drop, okD := x.Idle(variant, results.MetricHostMemDrop, 2)
	if okP && okO && own.Instances == pss.Instances {
		shared = max(pss.Median-own.Median, 0)
		pss = own
	}
	switch {
	case okD && (!okP || drop.Median > pss.Median):
		return costOf(drop, fmt.Sprintf("MemAvailable drop per instance at %d instances", drop.Instances)), 0, true
	case okO && pss.Metric == results.MetricPSSOwn:
		return costOf(pss, fmt.Sprintf("own memory of an idle instance (%d at a time), its shared pages (%s) counted once", pss.Instances, units.Format(shared, "B"))), shared, true
	case okP:
		return costOf(pss, fmt.Sprintf("PSS of an idle instance (%d at a time)", pss.Instances)), 0, true
	}
	return Cost{}, 0, false
}

// memoryBudget is what instances of driver may take of h's memory: what
// it had available (all of it where unknown) down to the floor
// (results.DensityFloor), less what they share, held once. On the host
// the run ran on, what it had available is what the driver's trials or
// sweep found before their instances (MetricHostMemAvailable: the host
// may hold less by then than when the run began), else what the run found
// when it began. The driver's daemons (MetricDaemonPSS: libvirtd and
// virtlogd) are held once, out of the budget, except where what was
// available was read with them running (the trials' figure).
func memoryBudget(x *Index, variant string, h HostSize, shared float64) float64 {
	avail := h.MemoryBytes
	if h.MemAvailableBytes > 0 {
		avail = min(avail, h.MemAvailableBytes)
	}
	var daemons float64
	if s, ok := x.Idle(variant, results.MetricDaemonPSS, 1); ok {
		daemons = s.Median
	}
	if h.Ran {
		if at := x.Of(variant, results.MetricHostMemAvailable); len(at) > 0 {
			avail, daemons = min(h.MemoryBytes, int64(at[0].Median)), 0
		}
	}
	return float64(avail-results.DensityFloor(h.MemoryBytes)) - shared - daemons
}

// cpuCost is the CPU one idle instance keeps busy, in cores. From a
// density sweep: its figure at the largest count where the host's CPUs
// were not saturated, raised to any figure taken with them saturated
// (the instances then got less than they asked for, so that figure is a
// lower bound of what one costs). Else that of single trials.
func cpuCost(x *Index, variant string) (Cost, bool) {
	c, ok := Cost{}, false
	var unsat results.Summary
	for _, s := range x.Of(variant, results.MetricDensityCPU) {
		if s.Labels[results.LabelSaturated] != "true" && s.Instances > unsat.Instances {
			unsat = s
		}
	}
	if unsat.N > 0 {
		c, ok = costOf(unsat, fmt.Sprintf("CPU one idle instance costs the host at %d instances (density sweep)", unsat.Instances)), true
	}
	for _, s := range x.Of(variant, results.MetricDensityCPU) {
		if s.Labels[results.LabelSaturated] == "true" && s.Median > c.Value {
			c, ok = costOf(s, fmt.Sprintf("at least this: the host's CPUs were saturated with %d idle instances (density sweep)", s.Instances)), true
		}
	}
	if ok {
		return c, true
	}
	if s, found := x.Idle(variant, results.MetricIdleCPU, 1); found {
		return costOf(s, fmt.Sprintf("CPU of an idle instance's processes (%d at a time)", s.Instances)), true
	}
	return Cost{}, false
}

// pidsCost is the tasks one idle instance holds.
func pidsCost(x *Index, variant string) (Cost, bool) {
	if s, ok := x.Largest(variant, results.MetricDensityTasks); ok {
		return costOf(s, fmt.Sprintf("tasks per instance at %d instances (density sweep)", s.Instances)), true
	}
	if s, ok := x.Idle(variant, results.MetricTasks, 1); ok {
		return costOf(s, "tasks of an idle instance's processes"), true
	}
	return Cost{}, false
}

// diskCost is the writable layer one idle instance keeps on disk.
func diskCost(x *Index, variant string) (Cost, bool) {
	if s, ok := x.Idle(variant, results.MetricWritableAllocated, 1); ok {
		return costOf(s, "writable layer of an idle instance"), true
	}
	return Cost{}, false
}

// MaxCount bounds any count the model gives: no host holds more than
// 2^40 instances (a page each would take 4 PiB), and sums of counts over
// a fleet stay far from overflowing.
const MaxCount = 1 << 40

// fit returns how many instances of cost fit in budget, at most MaxCount.
func fit(budget, cost float64) int {
	if cost <= 0 {
		return Unbounded
	}
	return int(min(math.Floor(max(budget, 0)/cost), MaxCount))
}

// limit builds the Limit of one resource.
func limit(resource string, budget float64, c Cost) Limit {
	return Limit{Resource: resource, Budget: budget, Cost: c,
		Count: fit(budget, c.Value), Lo: fit(budget, c.Hi), Hi: fit(budget, c.Lo)}
}

// less orders counts with Unbounded as the largest.
func less(a, b int) bool {
	switch {
	case a == Unbounded:
		return false
	case b == Unbounded:
		return true
	}
	return a < b
}

// EstimateCapacity applies the capacity model to every variant with a
// memory figure, for each host: memory down to the floor (DensityFloor),
// CPU up to results.CPUCap of the host's CPUs, tasks up to
// results.PidsCap of its pid limit, writable layers up to results.DiskCap
// of its free disk. Resources without a measurement are left out of the
// minimum and named in Unmeasured.
func EstimateCapacity(x *Index, hosts []HostSize) []Capacity {
	var out []Capacity
	for _, variant := range x.variants {
		mem, shared, ok := memoryCost(x, variant)
		if !ok {
			continue
		}
		// An instance holds a page at least, whatever a MemAvailable drop
		// within the host's noise says.
		mem.Value, mem.Lo, mem.Hi = max(mem.Value, results.MinMemory), max(mem.Lo, results.MinMemory), max(mem.Hi, results.MinMemory)
		cpuC, okCPU := cpuCost(x, variant)
		pidC, okPids := pidsCost(x, variant)
		diskC, okDisk := diskCost(x, variant)
		for _, h := range hosts {
			limits := []Limit{limit(ResMemory, memoryBudget(x, variant, h, shared), mem)}
			var unmeasured []string
			if okCPU {
				limits = append(limits, limit(ResCPU, results.CPUCap*h.cores(), cpuC))
			} else {
				unmeasured = append(unmeasured, ResCPU)
			}
			switch {
			case okPids && h.PidsMax > 0:
				limits = append(limits, limit(ResPids, results.PidsCap*float64(h.PidsMax)-float64(h.TasksInUse), pidC))
			default:
				unmeasured = append(unmeasured, ResPids)
			}
			switch {
			case okDisk && h.DiskFreeBytes > 0:
				limits = append(limits, limit(ResDisk, results.DiskCap*float64(h.DiskFreeBytes), diskC))
			default:
				unmeasured = append(unmeasured, ResDisk)
			}
			c := Capacity{Host: h.Name, Variant: variant, Limits: limits, Unmeasured: unmeasured}
			if h.Ran {
				c.Objective = objectiveOf(x, variant)
			}
			bind := limits[0]
			for _, l := range limits[1:] {
				if less(l.Count, bind.Count) {
					bind = l
				}
			}
			c.Binding, c.Idle = bind.Resource, bind.Count
			c.IdleLo, c.IdleHi = bind.Lo, bind.Hi
			for _, l := range limits {
				if less(l.Lo, c.IdleLo) {
					c.IdleLo = l.Lo
				}
				if less(l.Hi, c.IdleHi) {
					c.IdleHi = l.Hi
				}
			}
			// Busy: each instance keeps one CPU busy besides its idle cost.
			c.Busy, c.BusyBinding = fit(results.CPUCap*h.cores(), 1+cpuC.Value), ResCPU
			for _, l := range limits {
				if l.Resource != ResCPU && less(l.Count, c.Busy) {
					c.Busy, c.BusyBinding = l.Count, l.Resource
				}
			}
			out = append(out, c)
		}
	}
	return out
}
