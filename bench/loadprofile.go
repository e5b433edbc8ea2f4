package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"virtbench/drivers"
	"virtbench/guest"
	"virtbench/internal/loadgen"
	"virtbench/internal/results"
)

// loadProfile is the trial step of a workload with a load profile
// (scenarios.Workload.Load): sendLoad, then a progress line on how the
// windows went.
func (t *trial) loadProfile(ctx context.Context, insts []*started) {
	v := t.sendLoad(ctx, insts)
	t.r.progress("%s", v.line(*t.w.Load))
}

// stepVerdict is how every instance's window of one load went against
// the objective.
type stepVerdict struct {
	// judged and met count the windows judged and those that met the
	// objective; weak says a window had too few requests for its p99.
	judged, met int
	weak        bool
	// bound and why are what failed first in the first window that
	// failed (loadgen.Verdict), with the instance's name in why.
	bound, why string
	// busy is the host's busy CPU share during the load.
	busy float64
}

// pass reports whether every window met the objective, on enough
// requests.
func (v stepVerdict) pass() bool { return v.judged > 0 && v.met == v.judged && !v.weak }

// sendLoad sends the workload's load profile to every instance that
// started, all at once, over each one's network path, and records each
// window (achieved rate, latencies, errors, whether it met the
// objective), the host's CPU during the load and virtbench's own, the
// generator's. An instance with no network path gets a failed sample that
// says so, and fails the objective.
func (t *trial) sendLoad(ctx context.Context, insts []*started) stepVerdict {
	p := *t.w.Load
	w, _ := guest.Lookup(t.w.Name)
	h := t.r.host()
	busy0, total0, hostErr := h.CPUTimes(ctx)
	before, cpuErr := processCPU()
	begin := time.Now()
	var wg sync.WaitGroup
	verdicts := make([]*loadgen.Verdict, len(insts))
	for i, st := range insts {
		if st.err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			lctx, stop := whileRunning(ctx, st)
			defer stop()
			verdicts[i] = t.loadOne(lctx, st, w.HTTPPath, p)
		}()
	}
	wg.Wait()
	var sv stepVerdict
	if after, err := processCPU(); cpuErr == nil && err == nil {
		t.record(results.Sample{Metric: results.MetricLoadGenCPU, Unit: "cores", Value: (after - before).Seconds() / time.Since(begin).Seconds()})
	}
	if busy1, total1, err := h.CPUTimes(ctx); hostErr == nil && err == nil {
		sv.busy = busyFraction(busy0, total0, busy1, total1)
		t.record(results.Sample{Metric: results.MetricLoadHostCPU, Unit: "%", Value: 100 * sv.busy})
	}
	for i, v := range verdicts {
		if v == nil {
			continue
		}
		sv.judged++
		sv.weak = sv.weak || v.Weak
		if v.Met {
			sv.met++
		} else if sv.why == "" {
			sv.bound, sv.why = v.Bound, insts[i].id+": "+v.Why
		}
	}
	return sv
}

// line says how the instances' windows went against the objective: how
// many met it, and what failed first where one did not.
func (v stepVerdict) line(p loadgen.Profile) string {
	line := fmt.Sprintf("load %.0f/s per instance for %v, host CPU %.0f%%", p.Rate, p.Duration, 100*v.busy)
	if p.SLO == nil || v.judged == 0 {
		return line
	}
	line += fmt.Sprintf(": %d of %d instances met the objective (p99 <= %v, errors <= %.2f%%)", v.met, v.judged, p.SLO.P99, 100*p.SLO.Errors)
	if v.weak {
		line += fmt.Sprintf("; weak: fewer than %d requests per instance", loadgen.MinRequestsForP99)
	}
	if v.why != "" {
		line += "; first failure " + v.why
	}
	return line
}

// loadOne sends p to one instance and records its window; with an
// objective, it returns the window's verdict.
func (t *trial) loadOne(ctx context.Context, st *started, path string, p loadgen.Profile) *loadgen.Verdict {
	fail := func(why string) *loadgen.Verdict {
		t.record(results.Sample{Instance: st.id, Metric: results.MetricLoadAchieved, Unit: "op/s", Error: why})
		return &loadgen.Verdict{Bound: loadgen.BoundErrors, Why: why}
	}
	dialer, ok := st.inst.(drivers.Dialer)
	if !ok {
		return fail(fmt.Sprintf("%s gives the host no network path to its instances", t.d.Name()))
	}
	_, port, err := net.SplitHostPort(st.ready.Guest.Addr)
	if err != nil {
		return fail("READY has no listen address: " + st.ready.Guest.Addr)
	}
	dial := func(ctx context.Context) (net.Conn, error) { return dialer.Dial(ctx, port) }
	if c, err := dial(ctx); errors.Is(err, drivers.ErrNotApplicable) {
		return fail("the instance has no network path from the host (its driver's network option is none; veth or tap gives it one)")
	} else if err == nil {
		c.Close()
	}
	r, err := loadgen.Run(ctx, dial, path, p)
	if err != nil {
		return fail(err.Error())
	}
	for _, s := range []results.Sample{
		{Metric: results.MetricLoadAchieved, Unit: "op/s", Value: r.Achieved},
		{Metric: results.MetricLoadP50, Unit: "sec", Value: r.P50.Seconds()},
		{Metric: results.MetricLoadP99, Unit: "sec", Value: r.P99.Seconds()},
		{Metric: results.MetricLoadP999, Unit: "sec", Value: r.P999.Seconds()},
		{Metric: results.MetricLoadErrors, Unit: "%", Value: 100 * r.Errors},
		{Metric: results.MetricLoadRequests, Unit: "requests", Value: float64(r.Requests)},
	} {
		s.Instance = st.id
		t.record(s)
	}
	if p.SLO == nil {
		return nil
	}
	v := p.SLO.Judge(r, p.Rate)
	met := 0.0
	if v.Met {
		met = 1
	}
	t.record(results.Sample{Instance: st.id, Metric: results.MetricLoadSLOMet, Value: met})
	return &v
}

// processCPU returns the CPU time virtbench's process has used: all its
// threads, the load generator's among them.
func processCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
