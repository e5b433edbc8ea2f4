package analysis

import (
	"math"
	"slices"
	"strings"
	"testing"

	"virtbench/internal/results"
	"virtbench/internal/stats"
)

// sum returns a summary of an idle single-instance metric with a median and
// its interval.
func sum(driver, metric, unit string, median, lo, hi float64) results.Summary {
	return summary(results.Key{Variant: driver, Workload: "idle", Instances: 1, Metric: metric}, unit, 6, median, lo, hi)
}

// summary returns a summary of key with n values, a median and its
// interval (where lo and hi are not infinite).
func summary(key results.Key, unit string, n int, median, lo, hi float64) results.Summary {
	return results.Summary{Key: key, Unit: unit, Summary: stats.Summary{N: n, Median: median, CILo: lo, CIHi: hi, Min: lo, Max: hi}}
}

// costs returns the summaries of one driver's idle costs: memory, CPU,
// tasks and writable layer; a negative value leaves the metric out.
func costs(driver string, mem, cpu, tasks, disk float64) []results.Summary {
	var out []results.Summary
	add := func(metric, unit string, v float64) {
		if v >= 0 {
			out = append(out, sum(driver, metric, unit, v, v, v))
		}
	}
	add(results.MetricPSS, "B", mem)
	add(results.MetricIdleCPU, "cores", cpu)
	add(results.MetricTasks, "tasks", tasks)
	add(results.MetricWritableAllocated, "B", disk)
	return out
}

// TestCapacityBinding makes each resource bind in turn on a host of
// 10 GiB (8 GiB above the floor), 2 CPUs (1.6 cores usable), a pid limit
// of 10000 with 1000 in use (8000 tasks usable) and 10 GiB of free disk
// (9 GiB usable).
func TestCapacityBinding(t *testing.T) {
	const mib, gib = 1 << 20, 1 << 30
	host := HostSize{Name: "h", MemoryBytes: 10 * gib, CPUs: 2, PidsMax: 10000, TasksInUse: 1000, DiskFreeBytes: 10 * gib}
	tests := []struct {
		name    string
		sums    []results.Summary
		idle    int
		binding string
		busy    int
		limited []string // the resources other than the binding one that limit
	}{
		{"memory", costs("d", 100*mib, 0.001, 4, 4096), 81, ResMemory, 1, []string{ResCPU, ResPids, ResDisk}},
		{"CPU", costs("d", 1*mib, 0.1, 4, 4096), 16, ResCPU, 1, []string{ResMemory, ResPids, ResDisk}},
		{"pids", costs("d", 1*mib, 0.0001, 1000, 4096), 8, ResPids, 1, []string{ResMemory, ResCPU, ResDisk}},
		{"disk", costs("d", 1*mib, 0.0001, 4, 2*gib), 4, ResDisk, 1, []string{ResMemory, ResCPU, ResPids}},
		{"CPU unused", costs("d", 100*mib, 0, 4, 4096), 81, ResMemory, 1, []string{ResPids, ResDisk}},
		{"CPU not measured", costs("d", 100*mib, -1, -1, -1), 81, ResMemory, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caps := EstimateCapacity(idx(tt.sums), []HostSize{host})
			if len(caps) != 1 {
				t.Fatalf("capacity rows %+v", caps)
			}
			c := caps[0]
			var limited []string
			for _, l := range c.Limits {
				if l.Resource != c.Binding && l.Count != Unbounded {
					limited = append(limited, l.Resource)
				}
			}
			if c.Idle != tt.idle || c.Binding != tt.binding || c.Busy != tt.busy || !slices.Equal(limited, tt.limited) {
				t.Errorf("capacity = %d idle (%s binds), %d busy, others limiting %v; want %d (%s), %d, %v", c.Idle, c.Binding, c.Busy, limited, tt.idle, tt.binding, tt.busy, tt.limited)
			}
			if tt.name == "CPU not measured" && !slices.Equal(c.Unmeasured, []string{ResCPU, ResPids, ResDisk}) {
				t.Errorf("unmeasured %v, want CPU, pids, disk", c.Unmeasured)
			}
		})
	}
}

// TestCapacityOwnMemory: a single idle instance's own memory (the
// anonymous and shmem part of its PSS) is what each more instance costs,
// and the rest of its PSS (file pages the instances share) is taken from
// the budget once; the budget starts from what the host had available.
// A cold QEMU maps its kernel image: 88 MiB of its 252 MiB PSS, shared.
func TestCapacityOwnMemory(t *testing.T) {
	const mib, gib = 1 << 20, 1 << 30
	sums := []results.Summary{
		sum("vm", results.MetricPSS, "B", 252*mib, 252*mib, 252*mib),
		sum("vm", results.MetricPSSOwn, "B", 164*mib, 164*mib, 164*mib),
	}
	// 24 GiB with 21 GiB available: 21 GiB less the 4.8 GiB floor, less
	// 88 MiB shared once, is 16504 MiB: 100 VMs of 164 MiB.
	host := HostSize{Name: "h", MemoryBytes: 24 * gib, MemAvailableBytes: 21 * gib, CPUs: 2}
	c := EstimateCapacity(idx(sums), []HostSize{host})[0]
	if c.Idle != 100 || !strings.Contains(c.Limits[0].Cost.Source, "shared pages (88.00MiB) counted once") {
		t.Errorf("capacity %d, memory cost from %q; want 100 at 164 MiB each, 88 MiB shared", c.Idle, c.Limits[0].Cost.Source)
	}
	// On the host the run ran on, what the variant's trials found before
	// their instances is the start: 17.2 GiB, 12.4 above the floor.
	host.Ran = true
	before := sum("vm", results.MetricHostMemAvailable, "B", 17.2*gib, 17.2*gib, 17.2*gib)
	if c := EstimateCapacity(idx(append(sums, before)), []HostSize{host})[0]; c.Idle != 76 {
		t.Errorf("capacity from the MemAvailable before the trial %d, want 76", c.Idle)
	}
	host.Ran = false
	// Without the own memory (a run from before it was recorded) the PSS
	// is the cost; a host of unknown availability is taken as empty.
	host.MemAvailableBytes = 0
	if c := EstimateCapacity(idx(sums[:1]), []HostSize{host})[0]; c.Idle != 78 {
		t.Errorf("capacity from the PSS on an empty host %d, want 78 (19.2 GiB at 252 MiB)", c.Idle)
	}
}

// TestCapacityRange checks that the range comes from the cost's interval
// and that the density sweep's figures are preferred to single trials.
func TestCapacityRange(t *testing.T) {
	const mib = 1 << 20
	sums := []results.Summary{
		sum("vm", results.MetricPSS, "B", 250*mib, 240*mib, 260*mib),
		sum("vm", results.MetricIdleCPU, "cores", 0.1, 0.08, 0.125),
	}
	host := HostSize{Name: "h", MemoryBytes: 64 << 30, CPUs: 4}
	c := EstimateCapacity(idx(sums), []HostSize{host})[0]
	// 3.2 cores: 32 at 0.1, 25 at 0.125, 40 at 0.08.
	if c.Binding != ResCPU || c.Idle != 32 || c.IdleLo != 25 || c.IdleHi != 40 {
		t.Errorf("capacity %d [%d-%d] (%s binds), want 32 [25-40] (CPU)", c.Idle, c.IdleLo, c.IdleHi, c.Binding)
	}
	// A density sweep measured more per instance at 16 VMs: it decides.
	sweep := summary(results.Key{Variant: "vm", Workload: "idle", Instances: 16, Metric: results.MetricDensityCPU}, "cores", 1, 0.2, math.Inf(-1), math.Inf(1))
	sweep.Min, sweep.Max = 0.2, 0.2
	c = EstimateCapacity(idx(append(sums, sweep)), []HostSize{host})[0]
	if c.Idle != 16 || !strings.Contains(c.Limits[1].Cost.Source, "density sweep") {
		t.Errorf("capacity with a sweep %d, CPU cost from %q; want 16 from the sweep", c.Idle, c.Limits[1].Cost.Source)
	}
	// At 40 the CPUs were saturated: that figure is a lower bound of the
	// cost; below the unsaturated one at 16 it changes nothing, above it
	// it decides.
	saturated := func(v float64) results.Summary {
		s := summary(results.Key{Variant: "vm", Workload: "idle", Instances: 40, Metric: results.MetricDensityCPU}, "cores", 1, v, v, v)
		s.Labels = map[string]string{"saturated": "true"}
		return s
	}
	if c = EstimateCapacity(idx(append(sums, sweep, saturated(0.05))), []HostSize{host})[0]; c.Idle != 16 {
		t.Errorf("capacity with a saturated step below the cost %d, want 16 from the unsaturated one", c.Idle)
	}
	if c = EstimateCapacity(idx(append(sums, sweep, saturated(0.32))), []HostSize{host})[0]; c.Idle != 10 || c.Binding != ResCPU {
		t.Errorf("capacity with a saturated step above the cost %d (%s binds), want 10 (CPU)", c.Idle, c.Binding)
	}
}

// TestSweepChecks: a sweep is set beside the model's count, and where they
// differ by more than a tenth, the note names the cost the model got
// wrong, or the limit the model does not plan with.
func TestSweepChecks(t *testing.T) {
	tests := []struct {
		reached     int
		limit       string
		model       int
		binding     string
		limits      []Limit
		wantNote    string
		wantNoteNil bool
	}{
		{4702, results.ResourcePids, 4897, ResPids, nil, "", true},
		{64, results.ResourceMemory, 114, ResMemory, nil, "memory ran out 44% earlier than the model said", false},
		{30, results.ResourceMemory, 114, ResCPU, nil, "memory ran out before the model's binding CPU", false},
		{114, results.ResourceMemory, 32, ResCPU, nil, "the sweep went 256% past the model's count: the model's CPU cost per instance was too high", false},
		// Past the CPU budget's headroom to the memory floor, where the
		// model's memory count agrees: the CPU cost was not wrong.
		{617, results.ResourceMemory, 543, ResCPU, []Limit{{Resource: ResMemory, Count: 658}, {Resource: ResCPU, Count: 543}}, "the model's memory count, 658, agrees", false},
		// ... and where it does not, the CPU cost was too high.
		{617, results.ResourceMemory, 300, ResCPU, []Limit{{Resource: ResMemory, Count: 900}, {Resource: ResCPU, Count: 300}}, "the model's CPU cost per instance was too high", false},
		{1000, results.StopMax, 4897, ResPids, nil, "stopped at the scenario's max, 20% of the model's count", false},
		{12, results.StopLatency, 114, ResMemory, nil, "stopped on a latency", false},
	}
	for _, tt := range tests {
		sum := summary(results.Key{Variant: "v", Metric: results.MetricDensityReached, Instances: tt.reached}, "instances", 1, float64(tt.reached), float64(tt.reached), float64(tt.reached))
		sum.Labels = map[string]string{results.LabelStopLimit: tt.limit, results.LabelStopReason: "why"}
		caps := []Capacity{{Host: ThisHost, Variant: "v", Idle: tt.model, Binding: tt.binding, Limits: tt.limits}}
		got := SweepChecks(idx([]results.Summary{sum}), caps)
		if len(got) != 1 || got[0].Reached != tt.reached || got[0].Model != tt.model {
			t.Fatalf("SweepChecks = %+v", got)
		}
		if n := got[0].Note; tt.wantNoteNil && n != "" || !strings.Contains(n, tt.wantNote) {
			t.Errorf("reached %d (%s), model %d (%s): note %q, want %q", tt.reached, tt.limit, tt.model, tt.binding, n, tt.wantNote)
		}
	}
}

// TestCapacityCgroupLimits: a run under a cgroup's memory limit and CPU
// quota plans with them, not with the machine's memory and CPUs.
func TestCapacityCgroupLimits(t *testing.T) {
	const mib, gib = 1 << 20, 1 << 30
	r := &Run{Provenance: results.Provenance{MemoryBytes: 24 * gib, Cores: 2, MemoryLimitBytes: 4 * gib, MemoryLimitAt: "/sys/fs/cgroup/memory/pod", CPULimitCores: 0.5, CPULimitAt: "/sys/fs/cgroup/cpu/pod"}}
	hosts := r.hostSizes(nil)
	if len(hosts) != 1 || hosts[0].MemoryBytes != 4*gib || hosts[0].cores() != 0.5 {
		t.Fatalf("hosts %+v: want this host with 4 GiB and 0.5 cores", hosts)
	}
	// 4 GiB less its 2 GiB floor: 20 of 100 MiB; 0.4 cores: 40 of 0.01.
	c := EstimateCapacity(idx(costs("d", 100*mib, 0.01, 4, -1)), hosts)[0]
	if c.Idle != 20 || c.Binding != ResMemory || c.Limits[1].Count != 40 {
		t.Errorf("capacity %d (%s binds), CPU would allow %d; want 20 (memory), 40", c.Idle, c.Binding, c.Limits[1].Count)
	}
}

// TestCapacityDaemons: a driver's daemons are held once, out of another
// host's memory budget; on the host that ran, what was available before
// the trials was read with them running, and nothing more is taken.
func TestCapacityDaemons(t *testing.T) {
	const mib, gib = 1 << 20, 1 << 30
	sums := append(costs("libvirt", 100*mib, -1, -1, -1), sum("libvirt", results.MetricDaemonPSS, "B", 819*mib, 819*mib, 819*mib))
	other := HostSize{Name: "other", MemoryBytes: 10 * gib, CPUs: 2}
	// 8 GiB above the floor, less 819 MiB of daemons: 73 VMs of 100 MiB.
	if c := EstimateCapacity(idx(sums), []HostSize{other})[0]; c.Idle != 73 {
		t.Errorf("another host: %d idle, want 73 (the daemons held once)", c.Idle)
	}
	ran := other
	ran.Ran = true
	avail := sum("libvirt", results.MetricHostMemAvailable, "B", 10*gib, 10*gib, 10*gib)
	if c := EstimateCapacity(idx(append(sums, avail)), []HostSize{ran})[0]; c.Idle != 81 {
		t.Errorf("the host that ran: %d idle, want 81 (its MemAvailable read with the daemons up)", c.Idle)
	}
}

// TestCapacityObjective: on the host that ran an objective sweep its row
// carries the answer, with the p99 and rate measured at the knee; other
// hosts' rows do not.
func TestCapacityObjective(t *testing.T) {
	const mib = 1 << 20
	at := func(metric, unit string, instances int, v float64) results.Summary {
		s := summary(results.Key{Variant: "container", Workload: "nginx", Instances: instances, Metric: metric}, unit, 1, v, v, v)
		return s
	}
	knee := at(results.MetricObjectiveInstances, "instances", 12, 12)
	knee.Labels = map[string]string{results.LabelStopLimit: "latency", results.LabelStopReason: "p99 30ms above 20ms", results.LabelFirstFailure: "14"}
	sums := append(costs("container", 4*mib, -1, -1, -1), knee,
		at(results.MetricObjectiveSteps, "steps", 12, 6), at(results.MetricObjectiveRate, "op/s", 12, 200), at(results.MetricObjectiveP99, "sec", 12, 0.02),
		at(results.MetricLoadP99, "sec", 12, 0.015), at(results.MetricLoadAchieved, "op/s", 12, 199.5), at(results.MetricLoadP99, "sec", 14, 0.03))
	caps := EstimateCapacity(idx(sums), []HostSize{{Name: ThisHost, MemoryBytes: 8 << 30, CPUs: 2, Ran: true}, {Name: "other", MemoryBytes: 8 << 30, CPUs: 2}})
	want := Objective{Workload: "nginx", Instances: 12, Lo: 12, Hi: 14, Binding: "latency", Why: "p99 30ms above 20ms", Rate: 199.5, P99: 0.015, Steps: 6, Offered: 200, SLOP99: 0.02}
	if o := caps[0].Objective; o == nil || *o != want {
		t.Errorf("objective %+v, want %+v", o, want)
	}
	if caps[1].Objective != nil {
		t.Errorf("another host's row carries the objective sweep of this one: %+v", caps[1].Objective)
	}
}

// TestFleetAtObjective: the fleet sums each variant's capacity at the load
// objective over its completed hosts and names the host type where a
// loaded instance-hour costs least, and the cheapest for a count of
// loaded instances, apart from the idle figures.
func TestFleetAtObjective(t *testing.T) {
	host := func(name, typ string, price float64, idle, loaded int) FleetHost {
		c := Capacity{Host: ThisHost, Variant: "container", Idle: idle, Limits: []Limit{{Resource: ResMemory}}, Objective: &Objective{Instances: loaded}}
		return FleetHost{Name: name, Record: HostRecord{Type: typ, PricePerHour: price}, Analysis: &Analysis{Index: idx(nil), Capacity: []Capacity{c}}}
	}
	// big holds 4× the idle instances of small for 3× its price, but only
	// twice the loaded ones: idle, big is cheaper per instance; loaded,
	// small is.
	f := &Fleet{Hosts: []FleetHost{host("big", "16c", 3, 4000, 40), host("small", "4c", 1, 1000, 20)}}
	fa := AnalyzeFleet(f, 100)
	tot := fa.Totals[0]
	if tot.Idle != 5000 || tot.Cheapest != "16c" || tot.Loaded == nil || tot.Loaded.Instances != 60 || tot.Loaded.Cheapest != "4c" {
		t.Fatalf("totals %+v (loaded %+v): want 5000 idle, cheapest 16c; 60 loaded, cheapest 4c", tot, tot.Loaded)
	}
	if p := tot.Loaded.For; p == nil || p.HostType != "4c" || p.Hosts != 5 || p.CostPerHour != 5 {
		t.Errorf("cheapest for 100 loaded: %+v, want 5 × 4c at 5 per hour", p)
	}
	if fa.Rows[1].CostPerLoadedInstanceHour != 0.05 {
		t.Errorf("small's cost per loaded instance-hour %v, want 0.05", fa.Rows[1].CostPerLoadedInstanceHour)
	}
}
