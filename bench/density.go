package bench

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/mem"

	"virtbench/drivers"
	"virtbench/scenarios"
)

// Density metrics, recorded with Instances set to the count after each step.
const (
	MetricDensityStartup    = "density.startup"      // start latency of each new instance
	MetricDensityPSS        = "density.pss_per_inst" // summed PSS / instances
	MetricDensityMemDrop    = "density.memdrop_per_inst"
	MetricDensityAvailable  = "density.mem_available"
	MetricDensityHostCPU    = "density.host_cpu" // percent of all CPUs during the step
	MetricDensityReached    = "density.reached"  // the count reached, once per driver
	MetricDensityFloor      = "density.floor"    // the MemAvailable floor, once per driver
	MetricSamplerDuration   = "sampler.duration" // time to sample every instance once
	defaultFloorFraction    = 0.20
	defaultFloorBytes       = 2 << 30
	densityProjectionMargin = 1.5
)

// DensityFloor returns the MemAvailable a sweep keeps free by default: the
// larger of 20% of the host's memory and 2 GiB.
func DensityFloor(total int64) int64 {
	return max(int64(defaultFloorFraction*float64(total)), defaultFloorBytes)
}

// nextCount returns the instance count after the step that starts at n.
func nextCount(d *scenarios.Density, n int) int {
	next := n + d.Factor
	if d.Step == "geometric" {
		next = max(n*d.Factor, 1)
		if n == 0 {
			next = 1
		}
	}
	return min(next, d.Max)
}

// density runs the sweep of one driver and workload. It always stops every
// instance it started, also when ctx ends.
func (r *Runner) density(ctx context.Context, d drivers.Driver, w scenarios.Workload, out *Outcome) error {
	ds := r.Scenario.Density
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return fmt.Errorf("bench: density: %w", err)
	}
	floor := ds.FloorBytes
	if floor == 0 {
		floor = DensityFloor(int64(vm.Total))
	}
	t := &trial{r: r, d: d, w: w, n: 0, out: out}
	t.record(Sample{Metric: MetricDensityFloor, Unit: "B", Value: float64(floor)})
	var insts []*started
	defer func() { t.stopAll(insts) }()
	base, err := StableMemAvailable(ctx)
	if r.Scenario.Settle > 0 {
		base, err = SettledMemAvailable(ctx, SettleLimit)
	}
	if err != nil {
		return err
	}
	var perInst float64 // bytes of MemAvailable each instance took, from the last step
	reason := fmt.Sprintf("reached max %d", ds.Max)
	for n := 0; n < ds.Max; {
		if err := ctx.Err(); err != nil {
			return err
		}
		next := nextCount(ds, n)
		avail, err := HostMemAvailable(ctx)
		if err != nil {
			return err
		}
		if perInst > 0 && float64(avail)-densityProjectionMargin*perInst*float64(next-n) < float64(floor) {
			reason = fmt.Sprintf("memory floor: %d more instances would leave less than %s available", next-n, fmtBytes(floor))
			break
		}
		t.n = next
		cpuBefore, _ := cpu.TimesWithContext(ctx, false)
		stepBegin := time.Now()
		fresh := make([]*started, next-n)
		sem := make(chan struct{}, maxParallelStarts)
		var wg sync.WaitGroup
		for i := range fresh {
			st := &started{id: fmt.Sprintf("%s-%s-dens-i%d", d.Name(), w.Name, n+i)}
			fresh[i] = st
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				t.startInstance(ctx, st, MetricDensityStartup)
			}()
		}
		wg.Wait()
		insts = append(insts, fresh...)
		if err := ctx.Err(); err != nil {
			return err
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
		if r.Scenario.Settle > 0 {
			time.Sleep(r.Scenario.Settle)
		}
		samplerBegin := time.Now()
		var pss int64
		running := 0
		for _, st := range insts {
			if st.err != nil || st.inst == nil {
				continue
			}
			m, err := MemoryOf(ctx, st.inst.Processes())
			if err != nil {
				continue
			}
			pss += m.PSS
			running++
		}
		t.record(Sample{Metric: MetricSamplerDuration, Unit: "sec", Value: time.Since(samplerBegin).Seconds()})
		avail, _ = HostMemAvailable(ctx)
		if running > 0 {
			perInst = float64(base-avail) / float64(running)
			t.record(Sample{Metric: MetricDensityPSS, Unit: "B", Value: float64(pss) / float64(running)})
			t.record(Sample{Metric: MetricDensityMemDrop, Unit: "B", Value: perInst})
		}
		t.record(Sample{Metric: MetricDensityAvailable, Unit: "B", Value: float64(avail)})
		if cpuAfter, err := cpu.TimesWithContext(ctx, false); err == nil && len(cpuBefore) == 1 && len(cpuAfter) == 1 {
			t.record(Sample{Metric: MetricDensityHostCPU, Unit: "%", Value: busyPercent(cpuBefore[0], cpuAfter[0])})
		}
		r.progress("density %s %s: %d instances (%d failed), step took %v", d.Name(), w.Name, running, failed, time.Since(stepBegin).Round(time.Millisecond))
		if failed > 0 {
			reason = fmt.Sprintf("a start failed at %d instances: %v", n, firstErr(fresh))
			break
		}
		if ds.LatencyLimit > 0 && len(lat) > 0 {
			sort.Float64s(lat)
			if m := lat[len(lat)/2]; m > ds.LatencyLimit.Seconds() {
				reason = fmt.Sprintf("start latency limit: the median start of the last step took %.3fs > %v", m, ds.LatencyLimit)
				break
			}
		}
		if avail < floor {
			reason = fmt.Sprintf("memory floor: MemAvailable %s is below %s", fmtBytes(avail), fmtBytes(floor))
			break
		}
	}
	reached := 0
	for _, st := range insts {
		if st.err == nil {
			reached++
		}
	}
	t.n = reached
	t.record(Sample{Metric: MetricDensityReached, Unit: "instances", Value: float64(reached), Labels: map[string]string{"stop_reason": reason}})
	t.mu.Lock()
	if out.Density == nil {
		out.Density = map[string]string{}
	}
	out.Density[d.Name()+" "+w.Name] = fmt.Sprintf("%d instances; stopped: %s", reached, reason)
	t.mu.Unlock()
	return nil
}

func firstErr(sts []*started) error {
	for _, st := range sts {
		if st.err != nil {
			return st.err
		}
	}
	return nil
}

// busyPercent is the share of CPU time not idle between two readings.
func busyPercent(a, b cpu.TimesStat) float64 {
	total := func(t cpu.TimesStat) float64 {
		return t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
	}
	dt := total(b) - total(a)
	if dt <= 0 {
		return 0
	}
	idle := (b.Idle + b.Iowait) - (a.Idle + a.Iowait)
	return 100 * (dt - idle) / dt
}

func fmtBytes(b int64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }
