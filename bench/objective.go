package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"virtbench/drivers"
	"virtbench/internal/loadgen"
	"virtbench/internal/results"
	"virtbench/scenarios"
)

// knee is where an objective sweep stands: the largest count whose every
// window met the objective (lo, 0 before one did), the smallest count
// found failing (hi, 0 before one did), and what bound it.
type knee struct {
	lo, hi     int
	bound, why string
	steps      int
}

// next returns the count of the step after one at n, or 0 when the knee
// is found: growing steps (the density sweep's) until a step fails, then
// bisection between the last pass and the first failure until they are
// within results.ObjectiveTolerance.
func (k knee) next(ds *scenarios.Density, n int) int {
	if k.hi == 0 {
		if next := nextCount(ds, n, 0); next > n {
			return next
		}
		return 0
	}
	if k.hi-k.lo <= max(1, int(results.ObjectiveTolerance*float64(k.lo))) {
		return 0
	}
	return (k.lo + k.hi) / 2
}

// objective runs the objective sweep of one variant and workload, whose
// load profile has an objective: each step brings the running instances
// to its count (starting more, or stopping the last started), sends the
// load to all of them at once and passes when every window met the
// objective. The sweep brackets the knee, the largest passing count, with
// growing steps, then bisects; the density sweep's limits (the memory
// floor, the host's tasks, a failed start) end it too. It records the
// knee, the first failing count, what bound it and the steps it took, and
// always stops every instance it started.
func (r *Runner) objective(ctx context.Context, name, driver string, d drivers.Driver, w scenarios.Workload, out *results.Outcome) error {
	sw, err := r.newSweep(ctx, name, driver, d, w, out)
	if err != nil {
		return err
	}
	defer sw.stopAll()
	if err := sw.baseline(ctx); err != nil {
		return err
	}
	var k knee
	for n, target := 0, nextCount(sw.ds, 0, 0); target > 0; target = k.next(sw.ds, n) {
		if err := ctx.Err(); err != nil {
			return err
		}
		stepBegin := time.Now()
		if why, err := sw.resize(ctx, n, target); err != nil || why.limit != "" {
			if err != nil {
				return err
			}
			// An idle limit binds before the load does: past the last
			// passing count nothing more fits.
			k.hi, k.bound, k.why = target, why.limit, why.why
			break
		}
		n = target
		sw.t.n = n
		passed, failed := 0, stepVerdict{}
		for range w.Load.Windows {
			v := sw.t.sendLoad(ctx, sw.insts)
			if err := ctx.Err(); err != nil {
				return err // an interrupted load judges nothing
			}
			if v.pass() {
				passed++
			} else if failed.judged == 0 {
				failed = v
			}
			r.progress("objective %s %s: %d instances, %s (step took %v)", name, w.Name, n, v.line(*w.Load), time.Since(stepBegin).Round(time.Millisecond))
		}
		k.steps++
		switch {
		case passed == w.Load.Windows:
			k.lo = n
		case passed > 0:
			k.hi, k.bound, k.why = n, results.StopUnstable, fmt.Sprintf("%d of %d windows met the objective (%s)", passed, w.Load.Windows, failed.why)
		default:
			k.hi, k.bound, k.why = n, failed.bound, failed.why
			if failed.busy >= CPUSaturated {
				k.bound, k.why = results.ResourceCPU, fmt.Sprintf("the host's CPUs were %.0f%% busy (%s)", 100*failed.busy, failed.why)
			}
			if failed.weak && failed.met == failed.judged {
				k.bound, k.why = results.StopWeak, fmt.Sprintf("fewer than %d requests in an instance's window", loadgen.MinRequestsForP99)
			}
		}
	}
	if k.hi == 0 {
		k.bound, k.why = results.StopMax, fmt.Sprintf("every step met the objective, up to max %d", sw.ds.Max)
	}
	sw.t.n = k.lo
	sw.t.record(results.Sample{Metric: results.MetricObjectiveInstances, Unit: "instances", Value: float64(k.lo),
		Labels: map[string]string{results.LabelStopLimit: k.bound, results.LabelStopReason: k.why, results.LabelFirstFailure: strconv.Itoa(k.hi)}})
	sw.t.record(results.Sample{Metric: results.MetricObjectiveSteps, Unit: "steps", Value: float64(k.steps)})
	sw.t.record(results.Sample{Metric: results.MetricObjectiveRate, Unit: "op/s", Value: w.Load.Rate})
	sw.t.record(results.Sample{Metric: results.MetricObjectiveP99, Unit: "sec", Value: w.Load.SLO.P99.Seconds()})
	sw.t.mu.Lock()
	defer sw.t.mu.Unlock()
	if out.Density == nil {
		out.Density = map[string]string{}
	}
	first := "no count failed"
	if k.hi > 0 {
		first = fmt.Sprintf("first failure at %d", k.hi)
	}
	out.Density[name+" "+w.Name] = fmt.Sprintf("%d instances met the objective (%s) in %d steps; bound: %s", k.lo, first, k.steps, k.why)
	return nil
}

// resize brings the sweep's running instances from n to target: it
// starts the missing ones (if they fit: the density sweep's admission)
// and samples them as a density step does, or stops the last started
// beyond target. It returns why more would not
// fit, or a failed start.
func (sw *sweep) resize(ctx context.Context, n, target int) (stop, error) {
	if target < n {
		sw.t.stopAll(sw.insts[target:])
		sw.insts = sw.insts[:target]
		return stop{}, nil
	}
	if why, err := sw.admit(ctx, target-n); err != nil || why.limit != "" {
		return why, err
	}
	fresh, err := sw.start(ctx, n, target)
	if err != nil {
		return stop{}, err
	}
	if countFailed(fresh) > 0 {
		return stop{results.StopFailed, fmt.Sprintf("a start failed at %d instances: %v", target, firstErr(fresh))}, nil
	}
	// What the instances take idle, as a density step measures it: the
	// next admission projects from it.
	_, err = sw.sample(ctx)
	return stop{}, err
}
