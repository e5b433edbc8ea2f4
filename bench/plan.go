package bench

import (
	"fmt"
	"time"

	"virtbench/drivers"
	"virtbench/guest"
	"virtbench/internal/hostload"
	"virtbench/internal/tools"
	"virtbench/scenarios"
)

// EstimateDuration estimates, before anything ran, how long sc's trials
// take on a host with cpus CPUs (with reps: auto, at their most
// repetitions): per trial, the driver's typical trial
// (drivers.Estimate.Trial) for each round of cpus instances started at
// once, the scenario's pause and settle, and what the workload itself takes at least
// (guest.Workload.Takes, and a server's load from the host, which drives
// one instance at a time: hostload.Takes). A density sweep is not estimated (0):
// it runs until a limit of the host stops it.
func EstimateDuration(sc *scenarios.Scenario, cpus int) time.Duration {
	if sc.Density != nil {
		return 0
	}
	cpus = max(cpus, 1)
	var total time.Duration
	for _, v := range sc.Drivers {
		info, err := drivers.Lookup(v.Driver)
		if err != nil {
			continue
		}
		for _, w := range sc.Workloads {
			if !v.Runs(w.Name) {
				continue
			}
			takes := guest.TakesOf(append([]string{w.Agent()}, w.Args...))
			var generator tools.Tool
			if gw, ok := guest.Lookup(w.Agent()); ok {
				generator, _ = gw.Generator()
			}
			for _, pt := range sc.Points() {
				n := pt.Instances
				rounds := time.Duration((n + cpus - 1) / cpus)
				load := time.Duration(n) * hostload.Takes(generator)
				if w.Load != nil {
					// Sent to every instance at once, window after window.
					load = time.Duration(w.Load.Windows) * (w.Load.Warmup + w.Load.Duration)
				}
				total += time.Duration(sc.Warmup+sc.Reps) * (rounds*info.Estimate.Trial + sc.Pause + sc.Settle + takes + load)
			}
		}
	}
	return total
}

// CheckPlan refuses a plan estimated (EstimateDuration) to take longer
// than the scenario's max_duration, with the line of its repetitions.
func CheckPlan(sc *scenarios.Scenario, cpus int) error {
	est := EstimateDuration(sc, cpus)
	if est <= sc.MaxDuration {
		return nil
	}
	return &scenarios.Error{File: sc.Source, Line: sc.Line("reps"), Msg: fmt.Sprintf(
		"reps: the plan would take about %v (%d repetitions of every trial, by the drivers' typical trial times and the workloads' own), more than max_duration %v: fewer reps or instances, or a larger max_duration (also --max-duration)",
		est.Round(time.Minute), sc.Warmup+sc.Reps, sc.MaxDuration)}
}
