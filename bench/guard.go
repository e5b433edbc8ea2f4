package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	// MemoryBytes is the host's memory.
	MemoryBytes int64
}

// HostLimitsNow reads this host's limits: kernel.pid_max,
// kernel.threads-max, the pids.max of virtbench's cgroup and its parents,
// and, for a user other than root, RLIMIT_NPROC.
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
	l.MemoryBytes, _ = HostMemTotal(context.Background())
	return l
}

// cgroupPidsMax returns the smallest pids.max of this process's pids
// cgroup (v1) or cgroup (v2) and its ancestors, and where it is; 0 when
// none is set. It reads the calling thread's membership: the main thread
// may be in an instance's cgroup for a moment while it spawns one.
func cgroupPidsMax() (int64, string) {
	f, err := os.Open("/proc/thread-self/cgroup")
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	var dir string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[1] == "pids" || strings.Contains(","+parts[1]+",", ",pids,"):
			dir = filepath.Join("/sys/fs/cgroup", parts[1], parts[2])
		case parts[0] == "0" && parts[1] == "" && dir == "":
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				dir = filepath.Join("/sys/fs/cgroup", parts[2])
			}
		}
	}
	var best int64
	var where string
	for d := dir; d != "" && strings.HasPrefix(d, "/sys/fs/cgroup/"); d = filepath.Dir(d) {
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
		for i, n := range sc.Instances {
			bad := func(format string, args ...any) {
				errs = append(errs, &scenarios.Error{File: sc.Source, Line: sc.Line(fmt.Sprintf("instances.%d", i)), Msg: fmt.Sprintf(format, args...)})
			}
			if budget := results.PidsCap * float64(l.Tasks); est.Tasks > 0 && l.Tasks > 0 && float64(n*est.Tasks) > budget {
				bad("instances: %d instances of %s need about %d tasks (%d each); this host allows %d (%s) and keeps %.0f%% of it for instances: at most %d fit",
					n, name, n*est.Tasks, est.Tasks, l.Tasks, l.TasksLimit, 100*results.PidsCap, int(budget)/est.Tasks)
			}
			for j, w := range sc.Workloads {
				if d := Demand(sc, v, w); v.Runs(w.Name) && d.MemoryBytes > 0 && memBudget > 0 && int64(n)*d.MemoryBytes > memBudget {
					line := sc.Line(fmt.Sprintf("instances.%d", i))
					if line == 0 {
						line = sc.Line(fmt.Sprintf("workloads.%d", j))
					}
					errs = append(errs, &scenarios.Error{File: sc.Source, Line: line, Msg: fmt.Sprintf("instances: %d instances of %s running %s may take %s of memory (%s each: what the workload asks for); this host has %s above its memory floor: at most %d fit",
						n, name, w, fmtBytes(int64(n)*d.MemoryBytes), fmtBytes(d.MemoryBytes), fmtBytes(memBudget), memBudget/d.MemoryBytes)})
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
