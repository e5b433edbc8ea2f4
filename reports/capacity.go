package reports

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"virtbench/internal/results"
)

// Host is the size of a host to plan for.
type Host struct {
	Name        string
	MemoryBytes int64
	// MemAvailableBytes is what the host had available before the
	// instances (0: unknown, an empty host: all of MemoryBytes).
	MemAvailableBytes int64
	// Ran marks the host the run ran on: where a variant recorded the
	// host's MemAvailable before its instances, that is its budget's start.
	Ran  bool
	CPUs int
	// CPULimit is a CPU quota in cores below CPUs (a cgroup's), 0 for none.
	CPULimit float64
	// PidsMax is how many tasks the host can hold (0: unknown, not a
	// limit) and TasksInUse how many it held before the instances.
	PidsMax, TasksInUse int64
	// DiskFreeBytes is the free space for writable layers (0: unknown).
	DiskFreeBytes int64
}

// cores returns the CPUs instances may keep busy: CPUs, or the quota.
func (h Host) cores() float64 {
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
	Value, Lo, Hi float64
	Unit          string
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
	Count, Lo, Hi int
}

// Unbounded marks a count that a resource does not limit (a cost of 0).
const Unbounded = -1

// Capacity is how many instances of one driver fit on a host: the minimum
// over resources of budget ÷ cost, for idle instances and for busy ones
// (each keeping one CPU busy).
type Capacity struct {
	Host   string `json:"host"`
	Driver string `json:"driver"`
	// Idle is how many idle instances fit, between IdleLo and IdleHi;
	// Binding names the resource that runs out first.
	Idle, IdleLo, IdleHi int
	Binding              string `json:"binding"`
	// Busy is how many fit when each keeps one CPU busy; BusyBinding
	// names the resource that runs out first then.
	Busy        int    `json:"busy"`
	BusyBinding string `json:"busy_binding"`
	// Limits are every resource measured, in the order memory, CPU,
	// pids, disk.
	Limits []Limit `json:"limits"`
	// Why says in words what limits the count, from the figures above.
	Why string `json:"why"`
}

// costOf returns the cost of a summary: its median with its confidence
// interval (which Summarize widens to the values' range when there are
// too few values for one).
func costOf(s results.Summary, source string) Cost {
	return Cost{Value: s.Median, Lo: s.CILo, Hi: s.CIHi, Unit: s.Unit, Source: source}
}

// largest returns the summary of driver's metric at its largest instance
// count (a density sweep's last step), if any.
func largest(sums []results.Summary, driver, metric string) (results.Summary, bool) {
	var best results.Summary
	for _, s := range sums {
		if s.Driver == driver && s.Metric == metric && s.N > 0 && s.Instances > best.Instances {
			best = s
		}
	}
	return best, best.N > 0
}

// idleSummary returns the summary of driver's metric on idle workloads,
// with the most instances at a time (minInst at least), if any.
func idleSummary(sums []results.Summary, driver, metric string, minInst int) (results.Summary, bool) {
	var best results.Summary
	for _, s := range sums {
		if s.Driver == driver && s.Metric == metric && results.BaselineWorkload(s.Workload) && s.N > 0 && s.Instances >= minInst && s.Instances > best.Instances {
			best = s
		}
	}
	return best, best.N > 0
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
func memoryCost(sums []results.Summary, driver string) (c Cost, shared float64, ok bool) {
	if s, ok := largest(sums, driver, results.MetricDensityMemDrop); ok {
		return costOf(s, fmt.Sprintf("MemAvailable drop per instance at %d instances (density sweep)", s.Instances)), 0, true
	}
	pss, okP := idleSummary(sums, driver, results.MetricPSS, 1)
	own, okO := idleSummary(sums, driver, results.MetricPSSOwn, 1)
	drop, okD := idleSummary(sums, driver, results.MetricHostMemDrop, 2)
	if okP && okO && own.Instances == pss.Instances {
		shared = max(pss.Median-own.Median, 0)
		pss = own
	}
	switch {
	case okD && (!okP || drop.Median > pss.Median):
		return costOf(drop, fmt.Sprintf("MemAvailable drop per instance at %d instances", drop.Instances)), 0, true
	case okO && pss.Metric == results.MetricPSSOwn:
		return costOf(pss, fmt.Sprintf("own memory of an idle instance (%d at a time), its shared pages (%s) counted once", pss.Instances, FormatValue(shared, "B"))), shared, true
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
// when it began.
func memoryBudget(sums []results.Summary, driver string, h Host, shared float64) float64 {
	avail := h.MemoryBytes
	if h.MemAvailableBytes > 0 {
		avail = min(avail, h.MemAvailableBytes)
	}
	if h.Ran {
		for _, s := range sums {
			if s.Driver == driver && s.Metric == results.MetricHostMemAvailable && s.N > 0 {
				avail = min(h.MemoryBytes, int64(s.Median))
				break
			}
		}
	}
	return float64(avail-results.DensityFloor(h.MemoryBytes)) - shared
}

// cpuCost is the CPU one idle instance keeps busy, in cores. From a
// density sweep: its figure at the largest count where the host's CPUs
// were not saturated, raised to any figure taken with them saturated
// (the instances then got less than they asked for, so that figure is a
// lower bound of what one costs). Else that of single trials.
func cpuCost(sums []results.Summary, driver string) (Cost, bool) {
	var unsat, sat []results.Summary
	for _, s := range sums {
		if s.Labels[results.LabelSaturated] == "true" {
			sat = append(sat, s)
		} else {
			unsat = append(unsat, s)
		}
	}
	c, ok := Cost{}, false
	if s, found := largest(unsat, driver, results.MetricDensityCPU); found {
		c, ok = costOf(s, fmt.Sprintf("CPU one idle instance costs the host at %d instances (density sweep)", s.Instances)), true
	}
	for _, s := range sat {
		if s.Driver == driver && s.Metric == results.MetricDensityCPU && s.N > 0 && s.Median > c.Value {
			c, ok = costOf(s, fmt.Sprintf("at least this: the host's CPUs were saturated with %d idle instances (density sweep)", s.Instances)), true
		}
	}
	if ok {
		return c, true
	}
	if s, found := idleSummary(sums, driver, results.MetricIdleCPU, 1); found {
		return costOf(s, fmt.Sprintf("CPU of an idle instance's processes (%d at a time)", s.Instances)), true
	}
	return Cost{}, false
}

// pidsCost is the tasks one idle instance holds.
func pidsCost(sums []results.Summary, driver string) (Cost, bool) {
	if s, ok := largest(sums, driver, results.MetricDensityTasks); ok {
		return costOf(s, fmt.Sprintf("tasks per instance at %d instances (density sweep)", s.Instances)), true
	}
	if s, ok := idleSummary(sums, driver, results.MetricTasks, 1); ok {
		return costOf(s, "tasks of an idle instance's processes"), true
	}
	return Cost{}, false
}

// diskCost is the writable layer one idle instance keeps on disk.
func diskCost(sums []results.Summary, driver string) (Cost, bool) {
	if s, ok := idleSummary(sums, driver, results.MetricWritableAllocated, 1); ok {
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

// EstimateCapacity applies the capacity model to every driver with a
// memory figure, for each host: memory down to the floor (DensityFloor),
// CPU up to results.CPUCap of the host's CPUs, tasks up to results.PidsCap of its pid
// limit, writable layers up to results.DiskCap of its free disk. Resources without
// a measurement are left out of the minimum and named in Why.
func EstimateCapacity(sums []results.Summary, hosts []Host) []Capacity {
	seen := map[string]bool{}
	var out []Capacity
	for _, s := range sums {
		if seen[s.Driver] {
			continue
		}
		seen[s.Driver] = true
		mem, shared, ok := memoryCost(sums, s.Driver)
		if !ok || mem.Value <= 0 {
			continue
		}
		// An instance holds a page at least, whatever a MemAvailable drop
		// within the host's noise says.
		mem.Value, mem.Lo, mem.Hi = max(mem.Value, results.MinMemory), max(mem.Lo, results.MinMemory), max(mem.Hi, results.MinMemory)
		cpuC, okCPU := cpuCost(sums, s.Driver)
		pidC, okPids := pidsCost(sums, s.Driver)
		diskC, okDisk := diskCost(sums, s.Driver)
		for _, h := range hosts {
			limits := []Limit{limit(ResMemory, memoryBudget(sums, s.Driver, h, shared), mem)}
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
			c := Capacity{Host: h.Name, Driver: s.Driver, Limits: limits}
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
			c.Why = why(c, unmeasured)
			out = append(out, c)
		}
	}
	return out
}

// why says in words what the figures of c show: the binding resource with
// its cost and budget, what each other resource would allow, and what was
// not measured.
func why(c Capacity, unmeasured []string) string {
	var first string
	var others []string
	for _, l := range c.Limits {
		switch {
		case l.Resource == c.Binding:
			first = fmt.Sprintf("%s binds: %s per instance, %s usable", l.Resource, formatCost(l.Cost), formatBudget(l))
		case l.Count == Unbounded:
			others = append(others, fmt.Sprintf("%s is no limit (none used while idle)", l.Resource))
		default:
			others = append(others, fmt.Sprintf("%s would allow %d", l.Resource, l.Count))
		}
	}
	parts := append([]string{first}, others...)
	if len(unmeasured) > 0 {
		parts = append(parts, "not measured: "+strings.Join(unmeasured, ", "))
	}
	return strings.Join(parts, "; ")
}

// formatCost writes a cost in its unit.
func formatCost(c Cost) string {
	if c.Unit == "cores" {
		return fmt.Sprintf("%.3f cores", c.Value)
	}
	return FormatValue(c.Value, c.Unit)
}

// formatBudget writes a limit's budget in its resource's unit.
func formatBudget(l Limit) string {
	switch l.Resource {
	case ResCPU:
		return fmt.Sprintf("%.1f cores", l.Budget)
	case ResPids:
		return fmt.Sprintf("%.0f tasks", l.Budget)
	}
	return FormatValue(l.Budget, "B")
}

// formatCount writes a count, "unbounded" for Unbounded.
func formatCount(n int) string {
	if n == Unbounded {
		return "unbounded"
	}
	return fmt.Sprint(n)
}

// capacityHeader is the header of the capacity tables.
var capacityHeader = []string{"host", "driver", "idle instances", "range", "binding", "busy instances", "why"}

func capacityRows(caps []Capacity) [][]string {
	var rows [][]string
	for _, c := range caps {
		rng := formatCount(c.IdleLo) + "-" + formatCount(c.IdleHi)
		if c.IdleLo == c.IdleHi {
			rng = "-"
		}
		rows = append(rows, []string{c.Host, c.Driver, formatCount(c.Idle), rng, c.Binding,
			fmt.Sprintf("%s (%s)", formatCount(c.Busy), c.BusyBinding), c.Why})
	}
	return rows
}

// WriteCapacity writes the estimates as a table with the model's budgets.
func WriteCapacity(w io.Writer, caps []Capacity) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(capacityHeader, "\t"))
	for _, r := range capacityRows(caps) {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, CapacityModel)
	return err
}

// CapacityModel states the model in one sentence, for every output.
var CapacityModel = fmt.Sprintf("capacity: instances that fit = the minimum over resources of budget ÷ per-instance cost; budgets: memory from what was available when the run began down to max(20%%, 2 GiB) free, less what instances share (held once), CPU up to %.0f%% of the host's CPUs, tasks up to %.0f%% of its pid limit, %.0f%% of free disk; busy instances keep one CPU each busy; ranges from the 95%% confidence intervals.", 100*results.CPUCap, 100*results.PidsCap, 100*results.DiskCap)
