package results

import (
	"fmt"

	"virtbench/internal/measure"
)

// Workload is what a run's records know of a workload: its name, the
// part it plays in the reports and the results it declares. The agent
// (package guest) defines the workloads; the drivers' registry declares
// each one here, so that summaries and reports read its meaning without
// the agent.
type Workload struct {
	Name    string `json:"name"`
	Summary string `json:"summary"`
	// Baseline marks the workload that does nothing once ready: what an
	// instance costs by merely existing (memory, CPU, tasks) is read from
	// its trials, and capacity is planned with them.
	Baseline bool `json:"baseline,omitempty"`
	// Disk marks a workload that reads and writes files on a disk of the
	// instance's own.
	Disk bool `json:"disk,omitempty"`
	// Files marks a workload that reads files of the instance's own file
	// system as it works (a Disk workload's, the file a server serves):
	// what serves them (a container engine's storage driver) is part of
	// its results.
	Files bool `json:"files,omitempty"`
	// Tools marks a workload that runs the field's tools (fio, iperf3,
	// Redis, nginx) rather than the agent's own loops: the performance
	// claim judges a dimension on them where they ran.
	Tools bool `json:"tools,omitempty"`
	// Measures are the workload's results.
	Measures []measure.Measure `json:"measures,omitempty"`
}

// DeclareWorkload registers w and the kind of each of its results: a
// performance metric where it improves one way or the other, FamilyOther
// where it does not. It panics on an empty name or a result already
// declared with another meaning, as a registry does.
func DeclareWorkload(w Workload) {
	if w.Name == "" {
		panic("results: DeclareWorkload of a workload without a name")
	}
	for _, m := range w.Measures {
		f := FamilyPerformance
		if m.Better == NoBetter {
			f = FamilyOther
		}
		Declare(m.Name, MetricKind{Family: f, Unit: m.Unit, Better: m.Better, Dimension: m.Dimension, Doc: fmt.Sprintf("%s workload: %s", w.Name, w.Summary)})
	}
	declared.Lock()
	defer declared.Unlock()
	declared.workloads[w.Name] = w
}
