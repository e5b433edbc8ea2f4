// Package measure declares what a measured value is, in the words the
// guest agent, the runner and the reports share: the direction in which
// it improves and the dimension of performance it stands for. It imports
// nothing of virtbench's, so the static agent can declare its workloads'
// results with it and the reports can read them without the agent.
package measure

import (
	"errors"
	"strconv"
)

// Better is the direction in which a measured value improves.
type Better int8

const (
	// NoBetter: an amount or a report, neither good nor bad by itself.
	NoBetter Better = iota
	HigherIsBetter
	LowerIsBetter
)

// betterNames are the directions as records write them (benchfmt's
// better=higher, better=lower).
var betterNames = [...]string{NoBetter: "none", HigherIsBetter: "higher", LowerIsBetter: "lower"}

// MarshalText writes the direction's name: none, higher or lower.
func (b Better) MarshalText() ([]byte, error) {
	if b < 0 || int(b) >= len(betterNames) {
		return nil, errors.New("measure: no such direction")
	}
	return []byte(betterNames[b]), nil
}

// UnmarshalText reads a direction's name.
func (b *Better) UnmarshalText(text []byte) error {
	for i, n := range betterNames {
		if n == string(text) {
			*b = Better(i)
			return nil
		}
	}
	return errors.New("measure: direction " + strconv.Quote(string(text)) + " is none, higher or lower")
}

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
	Name      string    `json:"name"`
	Unit      string    `json:"unit"`
	Better    Better    `json:"better"`
	Dimension Dimension `json:"dimension,omitempty"`
}

// Value is one named result with its unit, as a workload or a load
// generator measured it; Unmeasured, where set, says why it could not be
// measured (the value is then meaningless).
type Value struct {
	Name       string
	Value      float64
	Unit       string
	Unmeasured string
}
