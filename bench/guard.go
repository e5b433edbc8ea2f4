package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"virtbench/drivers"
	"virtbench/internal/results"
	"virtbench/scenarios"
)

// The guards keep instances within the host's budgets (results.PidsCap,
// the memory floor results.DensityFloor) and writable layers within the
// free disk less DiskReserve.
const (
	DiskReserve = 1 << 30
	// guardMargin is how much more than its estimate an instance is
	// assumed to take when deciding whether a trial may start.
	guardMargin = 1.5
)

// HostLimits are the limits that bound how many instances may run.
type HostLimits struct {
	// Tasks is the most tasks (processes and threads) this process and
	// its children may have, and TasksLimit names the limit that sets it.
	Tasks      int64
	TasksLimit string
	// MemoryBytes is the memory virtbench may use: the host's, or the
	// memory limit of its cgroup where that is less (Memory).
	MemoryBytes int64
	// Memory is the memory limit of virtbench's cgroup, the zero
	// MemoryLimit where none is set.
	Memory MemoryLimit
	// CPUs is the CPUs virtbench may use: those it may run on, or its
	// cgroup's CPU quota where that is less (CPULimitAt says where it is
	// set; "" where none is).
	CPUs       float64
	CPULimitAt string
}

// HostLimitsNow reads this host's limits: kernel.pid_max,
// kernel.threads-max, the pids.max of virtbench's cgroup and its parents,
// and, for a user other than root, RLIMIT_NPROC; the memory limit and CPU
// quota of that cgroup (v1 or v2) and its parents.
func HostLimitsNow() HostLimits {
	var l HostLimits
	lower := func(n int64, name string) {
		if n > 0 && (l.Tasks == 0 || n < l.Tasks) {
			l.Tasks, l.TasksLimit = n, name
		}
	}
	lower(kernelTasksLimit())
	if n, where := cgroupPidsMax(); n > 0 {
		lower(n, "pids.max of "+where)
	}
	if os.Geteuid() != 0 {
		var r syscall.Rlimit
		if syscall.Getrlimit(0x6 /* RLIMIT_NPROC */, &r) == nil && r.Cur < 1<<62 {
			lower(int64(r.Cur), "RLIMIT_NPROC")
		}
	}
	l.MemoryBytes, _ = hostMemTotal(context.Background())
	dirs := ownCgroupDirs()
	if l.Memory = memoryLimit(dirs); l.Memory.Bytes > 0 {
		l.MemoryBytes = min(l.MemoryBytes, l.Memory.Bytes)
	}
	l.CPUs = float64(runtime.NumCPU())
	if quota, at := cpuLimit(dirs); quota > 0 && quota < l.CPUs {
		l.CPUs, l.CPULimitAt = quota, at
	}
	return l
}

// cgroupPidsMax returns the smallest pids.max of this process's pids
// cgroup (v1) or cgroup (v2) and its ancestors, and where it is; 0 when
// none is set.
func cgroupPidsMax() (int64, string) {
	dirs := ownCgroupDirs()
	dir, ok := dirs["pids"]
	if !ok {
		if dir, ok = dirs[""]; !ok {
			return 0, ""
		}
	}
	var best int64
	var where string
	for _, d := range dir.ancestors() {
		n, err := strconv.ParseInt(readTrim(filepath.Join(d, "pids.max"), ""), 10, 64)
		if err == nil && n > 0 && (best == 0 || n < best) {
			best, where = n, d
		}
	}
	return best, where
}

// CheckFit refuses a scenario that can never fit this host: a trial whose
// instances would need more tasks than the host keeps for them, by the
// drivers' estimates (drivers.Info.Estimate; tasks are threads, which an
// idle instance holds from its start). The error names the scenario's file
// and line and says how many would fit. Memory is judged here only on what
// instances ask for by their settings (Demand: a workload's -size, a VM's
// RAM), against the host's memory above the floor: what an instance keeps
// resident otherwise is known only once measured, so the guard before each
// trial judges it. Density sweeps are not refused: they stop at the host's
// limits by themselves.
func CheckFit(sc *scenarios.Scenario, l HostLimits) error {
	if sc.Density != nil {
		return nil
	}
	var errs []error
	memBudget := l.MemoryBytes - results.DensityFloor(l.MemoryBytes)
	for _, v := range sc.Drivers {
		name := v.Name
		info, err := drivers.Lookup(v.Driver)
		if err != nil {
			continue // Validate reports it
		}
		est := info.Estimate
		if ram := GuestRAM(sc, v); memBudget > 0 && ram > memBudget {
			field := "memory"
			if _, ok := sc.VariantOptions(v)["memory"]; ok {
				field = "options"
			}
			errs = append(errs, &scenarios.Error{File: sc.Source, Line: sc.Line(field), Msg: fmt.Sprintf("%s: one guest's RAM is %s; this host has %s above its memory floor: not one fits",
				name, fmtBytes(ram), fmtBytes(memBudget))})
		}
		for _, pt := range sc.Points() {
			n := pt.Instances
			field, _, _ := strings.Cut(pt.Field, ".")
			bad := func(format string, args ...any) {
				errs = append(errs, &scenarios.Error{File: sc.Source, Line: sc.Line(pt.Field), Msg: field + ": " + fmt.Sprintf(format, args...)})
			}
			if budget := results.PidsCap * float64(l.Tasks); est.Tasks > 0 && l.Tasks > 0 && float64(n*est.Tasks) > budget {
				bad("%d instances of %s need about %d tasks (%d each); this host allows %d (%s) and keeps %.0f%% of it for instances: at most %d fit",
					n, name, n*est.Tasks, est.Tasks, l.Tasks, l.TasksLimit, 100*results.PidsCap, int(budget)/est.Tasks)
			}
			for j, w := range sc.Workloads {
				if d := Demand(sc, v, w); v.Runs(w.Name) && d.MemoryBytes > 0 && memBudget > 0 && int64(n)*d.MemoryBytes > memBudget {
					line := sc.Line(pt.Field)
					if line == 0 {
						line = sc.Line(fmt.Sprintf("workloads.%d", j))
					}
					errs = append(errs, &scenarios.Error{File: sc.Source, Line: line, Msg: fmt.Sprintf("%s: %d instances of %s running %s may take %s of memory (%s each: what the workload asks for); this host has %s above its memory floor: at most %d fit",
						field, n, name, w, fmtBytes(int64(n)*d.MemoryBytes), fmtBytes(d.MemoryBytes), fmtBytes(memBudget), memBudget/d.MemoryBytes)})
				}
			}
		}
	}
	if len(errs) > 0 {
		return scenarios.Errors(errs)
	}
	return nil
}

// errHostExhausted marks the instances of a trial left unstarted after the
// host refused a start for want of a resource.
var errHostExhausted = errors.New("not started: the host ran out of a resource earlier in this trial")

// hostExhausted reports whether err is the host refusing a resource: no
// more processes or threads (EAGAIN from fork or clone), memory (ENOMEM)
// or disk (ENOSPC).
func hostExhausted(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.ENOSPC)
}
