package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/dustin/go-humanize"

	"virtbench/drivers"
	"virtbench/guest"
	"virtbench/internal/results"
	"virtbench/scenarios"
)

// densityProjectionMargin is how much more than the last step's memory
// and tasks per instance the next step is projected to take.
const densityProjectionMargin = 1.5

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
	ds := r.Scenario.Density
	h := r.host()
	total, err := h.MemTotal(ctx)
	if err != nil {
		return fmt.Errorf("bench: density: %w", err)
	}
	floor := ds.FloorBytes
	if floor == 0 {
		floor = results.DensityFloor(total)
	}
	parallel := ds.Parallel
	if parallel == 0 {
		parallel = runtime.NumCPU()
	}
	gw, _ := guest.Lookup(w.Name)
	v, _ := r.Scenario.Variant(name)
	t := &trial{r: r, name: name, d: d, w: w, n: 0, out: out, ksm: r.Scenario.HostSettings(v)["ksm"] == "on"}
	t.record(results.Sample{Metric: results.MetricDensityFloor, Unit: "B", Value: float64(floor)})
	var insts []*started
	if t.ksm {
		if err := r.ksm.enable(); err != nil {
			return err
		}
		defer func() {
			if err := r.ksm.restore(); err != nil {
				t.record(results.Sample{Metric: results.MetricKSMSharing, Unit: "pages", Error: "putting KSM back: " + err.Error()})
			}
		}()
	}
	defer func() {
		if n, took := t.stopAll(insts); n > 0 {
			t.n = n
			t.record(results.Sample{Metric: results.MetricDensityTeardown, Unit: "sec", Value: took.Seconds()})
		}
	}()
	base, err := stableMemAvailable(ctx, h)
	if r.Scenario.Settle > 0 {
		base, err = settledMemAvailable(ctx, h, SettleLimit)
	}
	if err != nil {
		return err
	}
	// The host's own CPU use before any instance, so that each step
	// counts only what the instances add.
	baseCores, err := t.hostCores(ctx, h)
	if err != nil {
		return err
	}
	var perInst float64      // bytes of MemAvailable each instance took, from the last step
	var tasksPerInst float64 // tasks each instance holds: estimated, then measured
	if info, err := drivers.Lookup(driver); err == nil {
		tasksPerInst = float64(info.Estimate.Tasks)
	}
	reason := fmt.Sprintf("reached max %d", ds.Max)
	var busy float64 // the host's CPU share in the last step's idle window
	for n := 0; n < ds.Max; {
		if err := ctx.Err(); err != nil {
			return err
		}
		next := nextCount(ds, n, 0)
		if gw.Idle {
			next = nextCount(ds, n, busy)
		}
		avail, err := h.MemAvailable(ctx)
		if err != nil {
			return err
		}
		if perInst > 0 && float64(avail)-densityProjectionMargin*perInst*float64(next-n) < float64(floor) {
			reason = fmt.Sprintf("memory floor: %d more instances would leave less than %s available", next-n, fmtBytes(floor))
			break
		}
		if why := t.pidsFull(ctx, h, next-n, tasksPerInst); why != "" {
			reason = why
			break
		}
		t.n = next
		stepBegin := time.Now()
		fresh := make([]*started, next-n)
		for i := range fresh {
			fresh[i] = &started{id: fmt.Sprintf("%s-%s-dens-i%d", name, w.Name, n+i)}
		}
		insts = append(insts, fresh...)
		// All but the last start at once (bounded); the last starts alone
		// while the rest run: the marginal start.
		t.startParallel(ctx, fresh[:len(fresh)-1], parallel, results.MetricDensityStartup)
		marginal := fresh[len(fresh)-1]
		t.startInstance(ctx, marginal, results.MetricDensityStartup)
		if err := ctx.Err(); err != nil {
			return err
		}
		if marginal.err == nil {
			t.record(results.Sample{Instance: marginal.id, Metric: results.MetricDensityMarginal, Unit: "sec", Value: marginal.ready.Startup().Seconds()})
		}
		var lat []float64
		failed := 0
		for _, st := range fresh {
			if st.err != nil {
				failed++
				continue
			}
			lat = append(lat, st.ready.Startup().Seconds())
		}
		n = next
		if t.ksm {
			t.settleKSM(ctx, insts)
		}
		busy, err = t.idleWindow(ctx, h, insts, baseCores)
		if err != nil {
			return err
		}
		running := t.sampleDensity(ctx, h, insts, base, &perInst, &tasksPerInst)
		r.progress("density %s %s: %d instances (%d failed), host CPU %.0f%%, step took %v", name, w.Name, running, failed, 100*busy, time.Since(stepBegin).Round(time.Millisecond))
		if failed > 0 {
			reason = fmt.Sprintf("a start failed at %d instances: %v", n, firstErr(fresh))
			break
		}
		if ds.LatencyLimit > 0 && len(lat) > 0 {
			slices.Sort(lat)
			if m := lat[len(lat)/2]; m > ds.LatencyLimit.Seconds() {
				reason = fmt.Sprintf("start latency limit: the median start of the last step took %.3fs > %v", m, ds.LatencyLimit)
				break
			}
		}
		if avail, err := h.MemAvailable(ctx); err == nil && avail < floor {
			reason = fmt.Sprintf("memory floor: MemAvailable %s is below %s", fmtBytes(avail), fmtBytes(floor))
			break
		}
		if gw.Idle && busy >= CPUSaturated {
			// Once more, so that a burst of the host's own work does not
			// end the sweep.
			if busy, err = t.idleWindow(ctx, h, insts, baseCores); err != nil {
				return err
			}
			if busy >= CPUSaturated {
				reason = fmt.Sprintf("CPU saturated: the host's CPUs were %.0f%% busy with %d idle instances, twice (limit %.0f%%; %.2f cores were busy before the sweep)", 100*busy, running, 100*CPUSaturated, baseCores)
				break
			}
		}
	}
	reached := 0
	for _, st := range insts {
		if st.err == nil {
			reached++
		}
	}
	t.n = reached
	t.record(results.Sample{Metric: results.MetricDensityReached, Unit: "instances", Value: float64(reached), Labels: map[string]string{results.LabelStopReason: reason}})
	t.mu.Lock()
	if out.Density == nil {
		out.Density = map[string]string{}
	}
	out.Density[name+" "+w.Name] = fmt.Sprintf("%d instances; stopped: %s", reached, reason)
	t.mu.Unlock()
	return nil
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
	busy0, total0, herr := h.CPUTimes(ctx)
	own0 := useOf(insts)
	begin := time.Now()
	select {
	case <-time.After(t.r.Scenario.Settle):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	elapsed := time.Since(begin).Seconds()
	own1 := useOf(insts)
	busy1, total1, herr1 := h.CPUTimes(ctx)
	var own float64
	counted := 0
	for st, u1 := range own1 {
		if u0, ok := own0[st]; ok {
			own += u1.CPUSeconds - u0.CPUSeconds
			counted++
		}
	}
	if counted == 0 || elapsed <= 0 {
		return 0, nil
	}
	perInst, source := own/elapsed/float64(counted), "processes"
	var busy float64
	if herr == nil && herr1 == nil {
		busy = busyFraction(busy0, total0, busy1, total1)
		t.record(results.Sample{Metric: results.MetricDensityHostCPU, Unit: "%", Value: 100 * busy})
		if host := ((busy1-busy0)/elapsed - baseCores) / float64(counted); host > perInst {
			perInst, source = host, "host"
		}
	}
	labels := map[string]string{results.LabelCPUSource: source}
	if busy >= CPUSaturated {
		// The CPUs could give no more: what the instances took is a
		// lower bound of what they asked for.
		labels[results.LabelSaturated] = "true"
	}
	t.record(results.Sample{Metric: results.MetricDensityCPU, Unit: "cores", Value: perInst, Labels: labels})
	return busy, nil
}

// hostCores returns how many cores the host keeps busy over the settle
// time (0 with a settle time below MinCPUWindow).
func (t *trial) hostCores(ctx context.Context, h Host) (float64, error) {
	if t.r.Scenario.Settle < MinCPUWindow {
		return 0, nil
	}
	busy0, _, err := h.CPUTimes(ctx)
	if err != nil {
		return 0, nil
	}
	begin := time.Now()
	select {
	case <-time.After(t.r.Scenario.Settle):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	busy1, _, err := h.CPUTimes(ctx)
	if err != nil {
		return 0, nil
	}
	return (busy1 - busy0) / time.Since(begin).Seconds(), nil
}

// useOf returns what each running instance's processes use now (one read
// of /proc/PID/stat per process, spread over the host's CPUs).
func useOf(insts []*started) map[*started]ProcUse {
	var mu sync.Mutex
	m := map[*started]ProcUse{}
	forEach(insts, func(st *started) {
		if u, err := ProcUseOf(st.inst.Processes()); err == nil {
			mu.Lock()
			m[st] = u
			mu.Unlock()
		}
	})
	return m
}

// pidsFull says why more instances of tasks each must not start: the
// host's tasks would pass PidsCap of its limit. It returns "" when they may.
func (t *trial) pidsFull(ctx context.Context, h Host, more int, tasks float64) string {
	lim := h.Limits()
	inUse, err := h.TasksInUse(ctx)
	if err != nil || lim.Tasks == 0 || tasks <= 0 {
		return ""
	}
	if need := densityProjectionMargin * tasks * float64(more); float64(inUse)+need > PidsCap*float64(lim.Tasks) {
		return fmt.Sprintf("pids: %d more instances of %.0f tasks each would pass %.0f%% of the host's %d tasks (%s; %d in use)", more, tasks, 100*PidsCap, lim.Tasks, lim.TasksLimit, inUse)
	}
	return ""
}

// sampleDensity records the memory and tasks per instance with every
// instance up, updates perInst (MemAvailable taken per instance since
// base) and tasksPerInst, and returns how many instances run.
func (t *trial) sampleDensity(ctx context.Context, h Host, insts []*started, base int64, perInst, tasksPerInst *float64) int {
	samplerBegin := time.Now()
	var mu sync.Mutex
	var pss int64
	tasks, running := 0, 0
	forEach(insts, func(st *started) {
		pids := st.inst.Processes()
		m, err := MemoryOf(ctx, pids)
		if err != nil {
			return
		}
		u, err := ProcUseOf(pids)
		mu.Lock()
		defer mu.Unlock()
		pss += m.PSS
		if err == nil {
			tasks += u.Tasks
		}
		running++
	})
	t.record(results.Sample{Metric: results.MetricSamplerDuration, Unit: "sec", Value: time.Since(samplerBegin).Seconds()})
	avail, err := h.MemAvailable(ctx)
	if err != nil {
		return running
	}
	if running > 0 {
		*perInst = float64(base-avail) / float64(running)
		t.record(results.Sample{Metric: results.MetricDensityPSS, Unit: "B", Value: float64(pss) / float64(running)})
		t.record(results.Sample{Metric: results.MetricDensityMemDrop, Unit: "B", Value: *perInst})
		*tasksPerInst = float64(tasks) / float64(running)
		t.record(results.Sample{Metric: results.MetricDensityTasks, Unit: "tasks", Value: *tasksPerInst})
	}
	t.record(results.Sample{Metric: results.MetricDensityAvailable, Unit: "B", Value: float64(avail)})
	return running
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
