package drivers

import (
	"slices"

	"virtbench/guest"
	"virtbench/internal/results"
)

// The agent's workloads are declared to the run's records once, when the
// drivers' registry loads: every program that runs or reports a run links
// it, and the reports read a workload's meaning (its results' kinds, the
// idle baseline, disk use) from results without the agent.
func init() {
	for _, w := range guest.Workloads() {
		results.DeclareWorkload(results.Workload{Name: w.Name, Summary: w.Summary, Baseline: w.Name == guest.IdleWorkload, Disk: w.Disk, Files: w.Disk || w.Files, Tools: len(w.Tools) > 0, Measures: append(slices.Clip(w.Measures), w.HostMeasures...)})
	}
}
