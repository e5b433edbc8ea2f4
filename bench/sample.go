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
	forEach(insts, func(st *started) {
		pids := st.inst.Processes()
		var u instanceUse
		if memory {
			u.mem, u.memErr = MemoryOf(ctx, pids)
		}
		u.proc, u.procErr = ProcUseOf(pids)
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

// cpuWindow is the one idle-CPU window of a trial, a density step and the
// host before a sweep: it waits window and measures what insts (none for
// the host alone) and the host used over it.
func cpuWindow(ctx context.Context, h Host, insts []*started, window time.Duration) (cpuUse, error) {
	busy0, total0, herr0 := h.CPUTimes(ctx)
	use0 := sampleInstances(ctx, insts, false)
	begin := time.Now()
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return cpuUse{}, ctx.Err()
	}
	elapsed := time.Since(begin).Seconds()
	use1 := sampleInstances(ctx, insts, false)
	busy1, total1, herr1 := h.CPUTimes(ctx)
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
	if herr0 == nil && herr1 == nil && elapsed > 0 {
		u.hostOK = true
		u.hostCores = (busy1 - busy0) / elapsed
		u.busy = busyFraction(busy0, total0, busy1, total1)
	}
	return u, nil
}
