package bench

import (
	"context"
	"sync"
	"time"
)

// instanceUse is what one sampling read of an instance: the memory of its
// host processes (where asked for) and their CPU time and tasks.
type instanceUse struct {
	mem     Memory
	memErr  error
	proc    ProcUse
	procErr error
}

// sampleInstances reads every running instance at once, spread over the
// host's CPUs: the one sampler of a trial and of a density step. With
// memory false it reads only the processes' CPU time and tasks (one read
// of /proc/PID/stat per process).
func sampleInstances(ctx context.Context, insts []*started, memory bool) map[*started]instanceUse {
	var mu sync.Mutex
	out := map[*started]instanceUse{}
	forEach(insts, func(st *started, r *procReader) {
		pids := st.inst.Processes()
		var u instanceUse
		if memory {
			u.mem, u.memErr = r.memoryOf(ctx, pids)
		}
		u.proc, u.procErr = r.procUseOf(pids)
		mu.Lock()
		out[st] = u
		mu.Unlock()
	})
	return out
}

// cpuUse is what one idle-CPU window measured: the cores each instance's
// processes kept busy, the tasks they held at its end, and the host's
// busy cores and busy share of all its CPUs (hostOK false where the host's
// CPU times could not be read).
type cpuUse struct {
	cores     map[*started]float64
	tasks     map[*started]int
	hostCores float64
	busy      float64
	hostOK    bool
}

// Settling: an instance's idle CPU is read once its use stopped falling (a
// VM right after READY still finishes its boot, a full OS starts its
// services), the same way in a trial and in a density step.
const (
	// IdleFloor is the CPU per instance below which an instance counts as
	// idle at once: one clock tick a second.
	IdleFloor = 0.01
	// settledRatio is how much of the previous window's use the last one
	// must keep to count as no longer falling.
	settledRatio = 0.85
	// IdleSettleLimit bounds the wait for settling.
	IdleSettleLimit = 20 * time.Second
	// IdleCPUWindow is the shortest idle-CPU window: process CPU times
	// advance in clock ticks (10 ms), so a window of a second tells 0.01
	// cores per instance apart, which an idle VM's cost is near.
	IdleCPUWindow = time.Second
)

// idleCPUWindow is the window an idle CPU is read over for a scenario
// that settles for settle: settle, at least IdleCPUWindow.
func idleCPUWindow(settle time.Duration) time.Duration { return max(settle, IdleCPUWindow) }

// settledCPU measures windows of length window, one after the other, until
// the instances' CPU use per instance stopped falling (below IdleFloor, or
// at least settledRatio of the previous window's) or IdleSettleLimit
// passed, and returns the last window's use and how long settling took
// before it (0: the first window was settled).
func settledCPU(ctx context.Context, h Host, insts []*started, window time.Duration) (cpuUse, time.Duration, error) {
	return settle(func() (cpuUse, error) { return cpuWindow(ctx, h, insts, window) }, IdleSettleLimit)
}

// settle calls measure until its use per instance stopped falling, or
// limit passed; see settledCPU.
func settle(measure func() (cpuUse, error), limit time.Duration) (cpuUse, time.Duration, error) {
	begin := time.Now()
	var waited time.Duration // before the window being measured
	prev := -1.0
	for {
		u, err := measure()
		if err != nil {
			return u, 0, err
		}
		rate := u.perInstance()
		if rate < IdleFloor || prev >= 0 && rate >= settledRatio*prev || time.Since(begin) >= limit {
			return u, waited, nil
		}
		prev, waited = rate, time.Since(begin)
	}
}

// perInstance is the mean CPU of the instances measured.
func (u cpuUse) perInstance() float64 {
	if len(u.cores) == 0 {
		return 0
	}
	var sum float64
	for _, c := range u.cores {
		sum += c
	}
	return sum / float64(len(u.cores))
}

// cpuWindow is one idle-CPU window of a trial, a density step and the host
// before a sweep: it waits window and measures what insts (none for the
// host alone) and the host used over it. The host's window lies between
// the two samplings of the instances, so that what the harness spends
// reading thousands of processes is not counted as the instances' cost;
// each instance's window runs from one sampling's start to the next's.
func cpuWindow(ctx context.Context, h Host, insts []*started, window time.Duration) (cpuUse, error) {
	begin := time.Now()
	use0 := sampleInstances(ctx, insts, false)
	busy0, total0, herr0 := h.CPUTimes(ctx)
	hostBegin := time.Now()
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return cpuUse{}, ctx.Err()
	}
	busy1, total1, herr1 := h.CPUTimes(ctx)
	hostElapsed := time.Since(hostBegin).Seconds()
	elapsed := time.Since(begin).Seconds()
	use1 := sampleInstances(ctx, insts, false)
	u := cpuUse{cores: map[*started]float64{}, tasks: map[*started]int{}}
	for st, u1 := range use1 {
		if u1.procErr != nil {
			continue
		}
		u.tasks[st] = u1.proc.Tasks
		if u0, ok := use0[st]; ok && u0.procErr == nil && elapsed > 0 {
			u.cores[st] = (u1.proc.CPUSeconds - u0.proc.CPUSeconds) / elapsed
		}
	}
	if herr0 == nil && herr1 == nil && hostElapsed > 0 {
		u.hostOK = true
		u.hostCores = (busy1 - busy0) / hostElapsed
		u.busy = busyFraction(busy0, total0, busy1, total1)
	}
	return u, nil
}
