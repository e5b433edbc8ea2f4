package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/shirou/gopsutil/v4/process"

	"virtbench/drivers"
	"virtbench/guest"
	"virtbench/internal/results"
	"virtbench/scenarios"
)

// densityProjectionMargin is how much more than the last step's memory
// and tasks per instance the next step is projected to take.
const densityProjectionMargin = 1.5

// SweepResolution is the share of its count below which a sweep takes no
// more steps: it ends within that share of the limit that stopped it
// (where KSM keeps merging, the limit creeps up with every step).
const SweepResolution = 0.04

// CPUSaturated is the host CPU utilisation (busy share of all CPUs) at
// which a sweep of idle instances stops: more instances would measure a
// host that cannot keep up, not how many fit.
const CPUSaturated = 0.90

// nextCount returns the instance count after the step that starts at n.
// Once the host's CPUs are a third busy with idle instances (busy, the
// last step's share), steps shrink to an eighth of the count, so that the
// sweep finds where the CPUs saturate within about 12%.
func nextCount(d *scenarios.Density, n int, busy float64) int {
	if busy >= CPUSaturated/3 && n > 0 {
		return min(n+max(1, n/8), d.Max)
	}
	next := n + d.Factor
	if d.Step == "geometric" {
		next = max(n*d.Factor, 1)
		if n == 0 {
			next = 1
		}
	}
	return min(next, d.Max)
}

// startParallel starts every instance of sts, at most parallel at once, and
// returns when each is ready or has failed. Once the host refuses a start
// for want of a resource (see hostExhausted), the instances not yet
// started are left so, with errHostExhausted, and counted in one failure.
func (t *trial) startParallel(ctx context.Context, sts []*started, parallel int, metric string) {
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var exhausted error
	skipped := 0
	for _, st := range sts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			mu.Lock()
			stop := exhausted != nil
			if stop {
				skipped++
			}
			mu.Unlock()
			if stop {
				st.err = errHostExhausted
				return
			}
			t.startInstance(ctx, st, metric)
			if st.err != nil && hostExhausted(st.err) {
				mu.Lock()
				if exhausted == nil {
					exhausted = st.err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if skipped > 0 {
		t.record(results.Sample{Metric: metric, Unit: "sec", Error: fmt.Sprintf("%d starts skipped after the host refused one: %v", skipped, exhausted)})
	}
}

// density runs the sweep of one variant (name, a configuration of driver)
// and workload. It always stops every instance it started, also when ctx
// ends.
func (r *Runner) density(ctx context.Context, name, driver string, d drivers.Driver, w scenarios.Workload, out *results.Outcome) error {
	sw, err := r.newSweep(ctx, name, driver, d, w, out)
	if err != nil {
		return err
	}
	if sw.t.ksm {
		if err := r.ksm.enable(); err != nil {
			return err
		}
		defer func() {
			if err := r.ksm.restore(); err != nil {
				sw.t.record(results.Sample{Metric: results.MetricKSMSharing, Unit: "pages", Error: "putting KSM back: " + err.Error()})
			}
		}()
	}
	defer sw.stopAll()
	if err := sw.baseline(ctx); err != nil {
		return err
	}
	reason := stop{results.StopMax, fmt.Sprintf("reached max %d", sw.ds.Max)}
	// Every limit's headroom at the top, before the instances go.
	defer func() {
		if ctx.Err() == nil && len(sw.insts) > 0 {
			sw.t.n = len(sw.insts) - countFailed(sw.insts)
			sw.recordLimits(ctx)
		}
	}()
	for n := 0; n < sw.ds.Max; {
		if err := ctx.Err(); err != nil {
			return err
		}
		next, why, err := sw.nextStep(ctx, n)
		if err != nil {
			return err
		}
		if why.limit != "" {
			reason = why
			break
		}
		stepBegin := time.Now()
		fresh, err := sw.start(ctx, n, next)
		if err != nil {
			return err
		}
		n = next
		running, err := sw.sample(ctx)
		if err != nil {
			return err
		}
		failed := countFailed(fresh)
		r.progress("density %s %s: %d instances (%d failed), host CPU %.0f%%, step took %v", name, w.Name, running, failed, 100*sw.busy, time.Since(stepBegin).Round(time.Millisecond))
		if why, err = sw.stopReason(ctx, n, fresh, running); err != nil {
			return err
		}
		if why.limit != "" {
			reason = why
			break
		}
	}
	sw.finish(reason)
	return nil
}

// sweep is one density sweep of a variant and workload: its trial, the
// host's state before it and what the last step measured.
type sweep struct {
	r        *Runner
	t        *trial
	ds       *scenarios.Density
	h        Host
	idle     bool // the workload idles once ready: CPU saturation stops the sweep
	floor    int64
	parallel int
	insts    []*started
	// made counts the instances the sweep started, whatever stopped
	// since (an objective sweep stops some as it bisects): each has an ID
	// of its own.
	made int
	// base and baseCores are the host's MemAvailable and busy cores
	// before any instance, so that each step counts only what the
	// instances add.
	base      int64
	baseCores float64
	// perInst and tasksPerInst are the MemAvailable and tasks each
	// instance took in the last step (tasks estimated until measured);
	// busy is the host's CPU share in its idle window.
	perInst, tasksPerInst, busy float64
}

// newSweep prepares a sweep: the memory floor it keeps (recorded) and how
// many instances start at once.
func (r *Runner) newSweep(ctx context.Context, name, driver string, d drivers.Driver, w scenarios.Workload, out *results.Outcome) (*sweep, error) {
	ds := r.Scenario.Density
	sw := &sweep{r: r, ds: ds, h: r.host(), floor: ds.FloorBytes, parallel: ds.Parallel}
	total, err := sw.h.MemTotal(ctx)
	if err != nil {
		return nil, fmt.Errorf("bench: density: %w", err)
	}
	if sw.floor == 0 {
		sw.floor = results.DensityFloor(total)
	}
	if sw.parallel == 0 {
		sw.parallel = runtime.NumCPU()
	}
	gw, _ := guest.Lookup(w.Agent())
	sw.idle = gw.Idle
	if info, err := drivers.Lookup(driver); err == nil {
		sw.tasksPerInst = float64(info.Estimate.Tasks)
	}
	v, _ := r.Scenario.Variant(name)
	sw.t = &trial{r: r, name: name, d: d, w: w, n: 0, out: out, ksm: r.Scenario.HostSettings(v)["ksm"] == "on"}
	sw.t.record(results.Sample{Metric: results.MetricDensityFloor, Unit: "B", Value: float64(sw.floor)})
	return sw, nil
}

// baseline reads the host's MemAvailable (settled, where the scenario
// settles) and busy cores before any instance.
func (sw *sweep) baseline(ctx context.Context) error {
	var err error
	if sw.r.Scenario.Settle > 0 {
		sw.base, err = settledMemAvailable(ctx, sw.h, SettleLimit)
	} else {
		sw.base, err = stableMemAvailable(ctx, sw.h)
	}
	if err != nil {
		return err
	}
	sw.t.record(results.Sample{Metric: results.MetricHostMemAvailable, Unit: "B", Value: float64(sw.base)})
	sw.recordLimits(ctx)
	sw.baseCores, err = sw.t.hostCores(ctx, sw.h)
	return err
}

// stop is why a sweep stops: the limit (a results.Resource, or
// results.StopLatency, StopFailed, StopMax) and what it found. The zero
// stop goes on.
type stop struct{ limit, why string }

// nextStep returns the instance count of the step after n, or why no
// more instances fit. Where the step the scenario asks for would not fit,
// it halves the increment until one fits (each step anew: where the
// instances' memory shrinks after they start, as KSM merges it, the
// steps grow again); it stops once fewer than SweepResolution of the
// count fit: the sweep ends within a few percent of the limit that stops it
// instead of a doubling short of it (each admitted step is at most two
// thirds of what is left, by the projection's margin, so a few steps get
// there).
func (sw *sweep) nextStep(ctx context.Context, n int) (int, stop, error) {
	busy := 0.0
	if sw.idle {
		busy = sw.busy
	}
	next := nextCount(sw.ds, n, busy)
	for {
		why, err := sw.admit(ctx, next-n)
		if err != nil || why.limit == "" {
			return next, stop{}, err
		}
		more := (next - n) / 2
		if n == 0 || float64(more) < max(1, SweepResolution*float64(n)) {
			return n, why, nil
		}
		next = n + more
	}
}

// admit returns why more instances would not fit (the memory the last
// step's cost projects, the task limit), or the zero stop.
func (sw *sweep) admit(ctx context.Context, more int) (stop, error) {
	avail, err := sw.h.MemAvailable(ctx)
	if err != nil {
		return stop{}, err
	}
	if sw.perInst > 0 && float64(avail)-densityProjectionMargin*sw.perInst*float64(more) < float64(sw.floor) {
		return stop{results.ResourceMemory, fmt.Sprintf("memory floor: %d more instances would leave less than %s available", more, fmtBytes(sw.floor))}, nil
	}
	if why := sw.t.pidsFull(ctx, sw.h, more, sw.tasksPerInst); why != "" {
		return stop{results.ResourcePids, why}, nil
	}
	return stop{}, nil
}

// start starts the instances n to next: all but the last at once
// (bounded), the last alone while the rest run, its start recorded as the
// marginal start.
func (sw *sweep) start(ctx context.Context, n, next int) ([]*started, error) {
	t := sw.t
	t.n = next
	fresh := make([]*started, next-n)
	for i := range fresh {
		fresh[i] = &started{id: fmt.Sprintf("%s-%s-dens-i%d", t.name, t.w.Name, sw.made+i)}
	}
	sw.made += len(fresh)
	sw.insts = append(sw.insts, fresh...)
	t.startParallel(ctx, fresh[:len(fresh)-1], sw.parallel, results.MetricDensityStartup)
	marginal := fresh[len(fresh)-1]
	t.startInstance(ctx, marginal, results.MetricDensityStartup)
	if err := ctx.Err(); err != nil {
		return fresh, err
	}
	if marginal.err == nil {
		t.record(results.Sample{Instance: marginal.id, Metric: results.MetricDensityMarginal, Unit: "sec", Value: marginal.ready.Startup().Seconds()})
	}
	return fresh, nil
}

// sample measures a step once its instances run: KSM's merging where it
// is on, the idle CPU window and every instance's memory and tasks. It
// returns how many instances run.
func (sw *sweep) sample(ctx context.Context) (int, error) {
	if sw.t.ksm {
		sw.t.settleKSM(ctx, sw.insts)
	}
	var err error
	if sw.busy, err = sw.t.idleWindow(ctx, sw.h, sw.insts, sw.baseCores); err != nil {
		return 0, err
	}
	return sw.t.sampleDensity(ctx, sw.h, sw.insts, sw.base, &sw.perInst, &sw.tasksPerInst), nil
}

// stopReason returns why the sweep stops after a step that reached n
// instances, running of them: a failed start, the start latency limit,
// the memory floor, or the CPUs saturated twice in a row; the zero stop
// to go on.
func (sw *sweep) stopReason(ctx context.Context, n int, fresh []*started, running int) (stop, error) {
	if countFailed(fresh) > 0 {
		return stop{results.StopFailed, fmt.Sprintf("a start failed at %d instances: %v", n, firstErr(fresh))}, nil
	}
	if lat := startLatencies(fresh); sw.ds.LatencyLimit > 0 && len(lat) > 0 {
		if m := lat[len(lat)/2]; m > sw.ds.LatencyLimit.Seconds() {
			return stop{results.StopLatency, fmt.Sprintf("start latency limit: the median start of the last step took %.3fs > %v", m, sw.ds.LatencyLimit)}, nil
		}
	}
	if avail, err := sw.h.MemAvailable(ctx); err == nil && avail < sw.floor {
		return stop{results.ResourceMemory, fmt.Sprintf("memory floor: MemAvailable %s is below %s", fmtBytes(avail), fmtBytes(sw.floor))}, nil
	}
	if !sw.idle || sw.busy < CPUSaturated {
		return stop{}, nil
	}
	// Once more, so that a burst of the host's own work does not end the
	// sweep.
	var err error
	if sw.busy, err = sw.t.idleWindow(ctx, sw.h, sw.insts, sw.baseCores); err != nil || sw.busy < CPUSaturated {
		return stop{}, err
	}
	return stop{results.ResourceCPU, fmt.Sprintf("CPU saturated: the host's CPUs were %.0f%% busy with %d idle instances, twice (limit %.0f%%; %.2f cores were busy before the sweep)", 100*sw.busy, running, 100*CPUSaturated, sw.baseCores)}, nil
}

// finish records how many instances the sweep reached and why it stopped.
func (sw *sweep) finish(reason stop) {
	t := sw.t
	reached := len(sw.insts) - countFailed(sw.insts)
	t.n = reached
	t.record(results.Sample{Metric: results.MetricDensityReached, Unit: "instances", Value: float64(reached), Labels: map[string]string{results.LabelStopReason: reason.why, results.LabelStopLimit: reason.limit}})
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.out.Density == nil {
		t.out.Density = map[string]string{}
	}
	t.out.Density[t.name+" "+t.w.Name] = fmt.Sprintf("%d instances; stopped: %s", reached, reason.why)
}

// stopAll stops every instance of the sweep and records the teardown.
func (sw *sweep) stopAll() {
	if n, took := sw.t.stopAll(sw.insts); n > 0 {
		sw.t.n = n
		sw.t.record(results.Sample{Metric: results.MetricDensityTeardown, Unit: "sec", Value: took.Seconds()})
	}
}

// countFailed counts the instances whose start failed.
func countFailed(sts []*started) int {
	n := 0
	for _, st := range sts {
		if st.err != nil {
			n++
		}
	}
	return n
}

// startLatencies returns the start latencies of the instances that
// started, sorted.
func startLatencies(sts []*started) []float64 {
	var lat []float64
	for _, st := range sts {
		if st.err == nil {
			lat = append(lat, st.ready.Startup().Seconds())
		}
	}
	slices.Sort(lat)
	return lat
}

// MinCPUWindow is the shortest settle time over which CPU use is measured:
// process CPU times advance in clock ticks (10 ms), so a shorter window
// says little.
const MinCPUWindow = 100 * time.Millisecond

// idleWindow waits the scenario's settle time with every instance up and
// records the host's CPU utilisation over it (as a percentage) and what
// CPU one instance costs (MetricDensityCPU; baseCores is the host's busy
// cores before the sweep). It returns the host's busy share; with a
// settle time below MinCPUWindow it measures nothing and returns 0.
func (t *trial) idleWindow(ctx context.Context, h Host, insts []*started, baseCores float64) (float64, error) {
	if t.r.Scenario.Settle < MinCPUWindow {
		return 0, nil
	}
	u, settled, err := settledCPU(ctx, h, insts, idleCPUWindow(t.r.Scenario.Settle))
	if err != nil || len(u.cores) == 0 {
		return 0, err
	}
	t.record(results.Sample{Metric: results.MetricIdleSettle, Unit: "sec", Value: settled.Seconds()})
	var own float64
	for _, c := range u.cores {
		own += c
	}
	counted := float64(len(u.cores))
	perInst, source := own/counted, "processes"
	if u.hostOK {
		t.record(results.Sample{Metric: results.MetricDensityHostCPU, Unit: "%", Value: 100 * u.busy})
		if host := (u.hostCores - baseCores) / counted; host > perInst {
			perInst, source = host, "host"
		}
	}
	labels := map[string]string{results.LabelCPUSource: source}
	if u.busy >= CPUSaturated {
		// The CPUs could give no more: what the instances took is a
		// lower bound of what they asked for.
		labels[results.LabelSaturated] = "true"
	}
	t.record(results.Sample{Metric: results.MetricDensityCPU, Unit: "cores", Value: perInst, Labels: labels})
	return u.busy, nil
}

// hostCores returns how many cores the host keeps busy over the settle
// time (0 with a settle time below MinCPUWindow, or where the host's CPU
// times cannot be read).
func (t *trial) hostCores(ctx context.Context, h Host) (float64, error) {
	if t.r.Scenario.Settle < MinCPUWindow {
		return 0, nil
	}
	u, err := cpuWindow(ctx, h, nil, idleCPUWindow(t.r.Scenario.Settle))
	return u.hostCores, err
}

// pidsFull says why more instances of tasks each must not start: the
// host's tasks would pass results.PidsCap of its limit. It returns "" when they may.
func (t *trial) pidsFull(ctx context.Context, h Host, more int, tasks float64) string {
	lim := h.Limits()
	inUse, err := h.TasksInUse(ctx)
	if err != nil || lim.Tasks == 0 || tasks <= 0 {
		return ""
	}
	if need := densityProjectionMargin * tasks * float64(more); float64(inUse)+need > results.PidsCap*float64(lim.Tasks) {
		return fmt.Sprintf("pids: %d more instances of %.0f tasks each would pass %.0f%% of the host's %d tasks (%s; %d in use)", more, tasks, 100*results.PidsCap, lim.Tasks, lim.TasksLimit, inUse)
	}
	return ""
}

// sampleDensity records, with every instance up, the tasks per instance
// (of every instance), the mean PSS (of every instance, or a random
// sample of results.DensityMemorySample) and the MemAvailable drop per
// instance; it updates perInst (MemAvailable taken per instance since
// base) and tasksPerInst, and returns how many instances run.
func (t *trial) sampleDensity(ctx context.Context, h Host, insts []*started, base int64, perInst, tasksPerInst *float64) int {
	samplerBegin := time.Now()
	tasks, running := 0, 0
	for _, u := range sampleInstances(ctx, insts, false) {
		if u.procErr != nil {
			continue
		}
		tasks += u.proc.Tasks
		running++
	}
	var pss int64
	measured := 0
	for _, u := range sampleInstances(ctx, memorySample(insts, results.DensityMemorySample), true) {
		if u.memErr == nil {
			pss += u.mem.PSS
			measured++
		}
	}
	t.record(results.Sample{Metric: results.MetricSamplerDuration, Unit: "sec", Value: time.Since(samplerBegin).Seconds()})
	// The base was read with virtbench's free heap returned to the OS
	// (stableMemAvailable); so is the top, or the harness's garbage would
	// count as memory the instances took. Its own RSS is read then too.
	debug.FreeOSMemory()
	if rss, err := ownRSS(ctx); err == nil {
		t.record(results.Sample{Metric: results.MetricHarnessRSS, Unit: "B", Value: float64(rss)})
	}
	avail, err := h.MemAvailable(ctx)
	if err != nil {
		return running
	}
	if measured > 0 {
		t.record(results.Sample{Metric: results.MetricDensityPSS, Unit: "B", Value: float64(pss) / float64(measured)})
		t.record(results.Sample{Metric: results.MetricDensityPSSSampled, Unit: "instances", Value: float64(measured)})
	}
	if running > 0 {
		*perInst = float64(base-avail) / float64(running)
		t.record(results.Sample{Metric: results.MetricDensityMemDrop, Unit: "B", Value: *perInst})
		*tasksPerInst = float64(tasks) / float64(running)
		t.record(results.Sample{Metric: results.MetricDensityTasks, Unit: "tasks", Value: *tasksPerInst})
	}
	t.record(results.Sample{Metric: results.MetricDensityAvailable, Unit: "B", Value: float64(avail)})
	return running
}

// memorySample returns the started instances of insts, or a uniform
// random sample of n of them where there are more.
func memorySample(insts []*started, n int) []*started {
	var up []*started
	for _, st := range insts {
		if st.err == nil && st.inst != nil {
			up = append(up, st)
		}
	}
	if len(up) <= n {
		return up
	}
	rand.Shuffle(len(up), func(i, j int) { up[i], up[j] = up[j], up[i] })
	return up[:n]
}

// ownRSS returns virtbench's own resident memory (gopsutil).
func ownRSS(ctx context.Context) (uint64, error) {
	p, err := process.NewProcessWithContext(ctx, int32(os.Getpid()))
	if err != nil {
		return 0, err
	}
	m, err := p.MemoryInfoWithContext(ctx)
	if err != nil {
		return 0, err
	}
	return m.RSS, nil
}

func firstErr(sts []*started) error {
	for _, st := range sts {
		if st.err != nil {
			return st.err
		}
	}
	return nil
}

func fmtBytes(b int64) string { return humanize.IBytes(uint64(max(b, 0))) }
