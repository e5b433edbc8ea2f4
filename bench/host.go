package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/tklauser/go-sysconf"

	"virtbench/drivers/state"
	"virtbench/guest"
)

// Host reads the host-wide figures that the runner's guards and density
// sweeps decide on. SystemHost reads this host; tests inject their own.
type Host interface {
	// MemAvailable returns the host's MemAvailable in bytes.
	MemAvailable(ctx context.Context) (int64, error)
	// MemTotal returns the host's total memory in bytes.
	MemTotal(ctx context.Context) (int64, error)
	// CPUTimes returns the busy and the total CPU seconds of all CPUs
	// since boot; their differences between two readings give the host's
	// utilisation in between.
	CPUTimes(ctx context.Context) (busy, total float64, err error)
	// Limits returns the limits on how many instances may run.
	Limits() HostLimits
	// TasksInUse returns how many tasks (processes and threads) run on
	// the host now.
	TasksInUse(ctx context.Context) (int64, error)
	// DiskFree returns the free bytes of the filesystem holding path.
	DiskFree(ctx context.Context, path string) (int64, error)
}

// SystemHost is this host, read through gopsutil (/proc/meminfo, /proc/stat).
type SystemHost struct{}

var _ Host = SystemHost{}

// MemAvailable returns MemAvailable from /proc/meminfo, or where
// virtbench's cgroup has a memory limit and that leaves less, the limit
// less the cgroup's working set.
func (SystemHost) MemAvailable(ctx context.Context) (int64, error) {
	v, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return 0, fmt.Errorf("bench: host memory: %w", err)
	}
	avail := int64(v.Available)
	if l := memoryLimit(ownCgroupDirs()); l.Bytes > 0 {
		avail = min(avail, max(l.Bytes-l.WorkingSet, 0))
	}
	return avail, nil
}

// MemTotal returns MemTotal from /proc/meminfo, or virtbench's cgroup's
// memory limit where that is less.
func (SystemHost) MemTotal(ctx context.Context) (int64, error) {
	total, err := hostMemTotal(ctx)
	if err != nil {
		return 0, err
	}
	if l := memoryLimit(ownCgroupDirs()); l.Bytes > 0 {
		total = min(total, l.Bytes)
	}
	return total, nil
}

// hostMemTotal returns MemTotal from /proc/meminfo: the machine's memory.
func hostMemTotal(ctx context.Context) (int64, error) {
	v, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return 0, fmt.Errorf("bench: host memory: %w", err)
	}
	return int64(v.Total), nil
}

// CPUTimes returns the all-CPU times from /proc/stat; idle and iowait
// count as not busy. Where virtbench's cgroup (or one above it) has a CPU
// quota of fewer cores than the host has, it returns what virtbench may
// use instead, as MemAvailable does: busy is the CPU time that cgroup has
// used, total the monotonic clock times the quota, so that their
// differences give the share of the quota in use.
func (SystemHost) CPUTimes(ctx context.Context) (busy, total float64, err error) {
	dirs := ownCgroupDirs()
	if quota, at := cpuLimit(dirs); quota > 0 && quota < float64(runtime.NumCPU()) {
		if used, err := cgroupCPUSeconds(at, dirs); err == nil {
			return used, guest.Monotonic() * quota, nil
		}
	}
	ts, err := cpu.TimesWithContext(ctx, false)
	if err != nil || len(ts) != 1 {
		return 0, 0, fmt.Errorf("bench: host CPU times: %v", err)
	}
	t := ts[0]
	total = t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
	return total - t.Idle - t.Iowait, total, nil
}

// Limits returns HostLimitsNow.
func (SystemHost) Limits() HostLimits { return HostLimitsNow() }

// TasksInUse returns the tasks on the host from /proc/loadavg.
func (SystemHost) TasksInUse(context.Context) (int64, error) {
	if n := tasksInUse(); n > 0 {
		return n, nil
	}
	return 0, errors.New("bench: no task count in /proc/loadavg")
}

// DiskFree returns the free bytes of path's filesystem.
func (SystemHost) DiskFree(ctx context.Context, path string) (int64, error) {
	u, err := disk.UsageWithContext(ctx, path)
	if err != nil {
		return 0, fmt.Errorf("bench: free disk: %w", err)
	}
	return int64(u.Free), nil
}

// HostMemTotal returns this host's total memory in bytes.
func HostMemTotal(ctx context.Context) (int64, error) { return SystemHost{}.MemTotal(ctx) }

// busyFraction is the share of CPU time spent busy between two CPUTimes
// readings, 0 when no time passed.
func busyFraction(busy0, total0, busy1, total1 float64) float64 {
	if total1 <= total0 {
		return 0
	}
	return (busy1 - busy0) / (total1 - total0)
}

// stableMemAvailable returns the median of five MemAvailable readings 20 ms
// apart, so that one burst of page cache activity does not decide a
// per-instance figure. virtbench first returns its own free heap to the
// OS, so that the Go scavenger releasing it later is not counted as memory
// instances gave back.
func stableMemAvailable(ctx context.Context, h Host) (int64, error) {
	debug.FreeOSMemory()
	var vs []int64
	for i := 0; i < 5; i++ {
		if i > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		v, err := h.MemAvailable(ctx)
		if err != nil {
			return 0, err
		}
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs[len(vs)/2], nil
}

// settledMemAvailable waits, up to limit, until MemAvailable stops moving
// (readings 100 ms apart that stay within 1 MiB for SettleWindow) and
// returns the last reading. Memory that stopped instances free
// asynchronously (network namespaces are torn down by a kernel worker, in
// steps about a second apart) would otherwise be counted as memory the
// next instances did not take.
func settledMemAvailable(ctx context.Context, h Host, limit time.Duration) (int64, error) {
	debug.FreeOSMemory() // as in stableMemAvailable
	var window []int64
	for end := time.Now().Add(limit); ; {
		v, err := h.MemAvailable(ctx)
		if err != nil {
			return 0, err
		}
		window = append(window, v)
		if n := int(SettleWindow / (100 * time.Millisecond)); len(window) > n {
			window = window[len(window)-n-1:]
			if slices.Max(window)-slices.Min(window) < 1<<20 {
				return v, nil
			}
		}
		if time.Now().After(end) {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SettleWindow is how long MemAvailable must stay still to count as
// settled, and SettleLimit how long a multi-instance trial waits for that.
const (
	SettleWindow = 2 * time.Second
	SettleLimit  = 30 * time.Second
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat times.
var clockTicks = func() float64 {
	if t, err := sysconf.Sysconf(sysconf.SC_CLK_TCK); err == nil && t > 0 {
		return float64(t)
	}
	return 100
}()

// ProcUse is what the processes of one instance use now, from one read of
// each one's /proc/PID/stat: the CPU time they have used since they
// started and the tasks (threads, each of which takes a PID from the
// host's pid_max) they hold.
type ProcUse struct {
	CPUSeconds float64
	Tasks      int
}

// ProcUseOf sums ProcUse over pids.
func ProcUseOf(pids []int32) (ProcUse, error) { return new(procReader).procUseOf(pids) }

func (r *procReader) procUseOf(pids []int32) (ProcUse, error) {
	var u ProcUse
	for _, pid := range pids {
		b, err := r.read(pid, "stat")
		if err != nil {
			return ProcUse{}, fmt.Errorf("bench: %w", err)
		}
		st, err := state.ParseStat(b)
		if err != nil {
			return ProcUse{}, fmt.Errorf("bench: /proc/%d/stat: %w", pid, err)
		}
		u.CPUSeconds += float64(st.UTime+st.STime) / clockTicks
		u.Tasks += st.Threads
	}
	return u, nil
}

// forEach calls fn for every running instance, spread over as many
// goroutines as the host has CPUs, each with a procReader of its own, and
// returns when all are done.
func forEach(insts []*started, fn func(st *started, r *procReader)) {
	work := make(chan *started)
	var wg sync.WaitGroup
	for range min(runtime.NumCPU(), len(insts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r procReader
			for st := range work {
				fn(st, &r)
			}
		}()
	}
	for _, st := range insts {
		if st.err == nil && st.inst != nil {
			work <- st
		}
	}
	close(work)
	wg.Wait()
}
