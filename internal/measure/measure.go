// Package measure declares what a measured value is, in the words the
// guest agent, the runner and the reports share: the direction in which
// it improves and the dimension of performance it stands for. It imports
// nothing of virtbench's, so the static agent can declare its workloads'
// results with it and the reports can read them without the agent.
package measure

// Better is the direction in which a measured value improves.
type Better int8

const (
	// NoBetter: an amount or a report, neither good nor bad by itself.
	NoBetter Better = iota
	HigherIsBetter
	LowerIsBetter
)

// Dimension is the side of performance a speed stands for; the
// performance claim is judged on each dimension a run measured.
type Dimension string

// The dimensions.
const (
	NoDimension Dimension = ""
	CPU         Dimension = "CPU"
	Memory      Dimension = "memory bandwidth"
	Syscall     Dimension = "system calls"
	DiskIOPS    Dimension = "disk IOPS"
	DiskBW      Dimension = "disk bandwidth"
	Network     Dimension = "network"
	Server      Dimension = "server requests"
)

// Measure declares one result of a workload: its RESULT name and unit,
// which way it improves and the dimension it measures. A result that
// improves one way or the other is the workload's speed.
type Measure struct {
	Name, Unit string
	Better     Better
	Dimension  Dimension
}
