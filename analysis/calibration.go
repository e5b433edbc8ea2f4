package analysis

import (
	"fmt"
	"math"

	"virtbench/internal/results"
)

// Limits of a quiet host: what it may show and still have its figures
// set beside another host's.
const (
	// StealLimit is the most CPU steal, in percent, a quiet host shows.
	StealLimit = 2.0
	// OthersLimit is the most tasks besides virtbench runnable at the
	// run's start, as a share of the host's cores.
	OthersLimit = 0.25
	// DriftLimit is the least drift between the start's and the end's
	// probes that counts, whatever the probes' noise.
	DriftLimit = 0.05
)

// HostState is how fast and how quiet a run's host was (its
// results.Calibration judged).
type HostState struct {
	// Known is false for a run that recorded no calibration (an older
	// virtbench): nothing is known, which is not zero.
	Known bool `json:"known"`
	Quiet bool `json:"quiet"`
	// Reasons say what was not quiet.
	Reasons []string `json:"reasons,omitempty"`
	// CPUPerCore is the start's CPU probe: SHA-256 operations per second
	// on one core, the figure hosts are compared by.
	CPUPerCore float64 `json:"cpu_per_core"`
	// StealPercent is the CPU time stolen over the run.
	StealPercent float64 `json:"steal_percent"`
}

// JudgeHost judges the calibration a run recorded.
func JudgeHost(p results.Provenance) HostState {
	c := p.Calibration
	if c == nil || c.Start == nil {
		return HostState{}
	}
	h := HostState{Known: true, CPUPerCore: c.Start.CPUOpsPerSec, StealPercent: c.StealPercent}
	if c.StealPercent > StealLimit {
		h.Reasons = append(h.Reasons, fmt.Sprintf("%.1f%% of the CPU time was stolen (by the hypervisor's other guests), more than %.0f%%", c.StealPercent, StealLimit))
	}
	if cores := max(p.Cores, 1); c.Start.OthersRunnable > OthersLimit*float64(cores) {
		h.Reasons = append(h.Reasons, fmt.Sprintf("tasks besides virtbench runnable when the run began: %.0f, on %d cores", c.Start.OthersRunnable, cores))
	}
	if c.End != nil {
		for _, d := range []struct {
			what                 string
			start, end           float64
			startNoise, endNoise float64
		}{
			{"CPU", c.Start.CPUOpsPerSec, c.End.CPUOpsPerSec, c.Start.CPUNoise, c.End.CPUNoise},
			{"memory", c.Start.MemBytesPerSec, c.End.MemBytesPerSec, c.Start.MemNoise, c.End.MemNoise},
			{"system call", 1 / c.Start.SyscallSec, 1 / c.End.SyscallSec, c.Start.SyscallNoise, c.End.SyscallNoise},
		} {
			if d.start <= 0 || d.end <= 0 || math.IsInf(d.start, 0) || math.IsInf(d.end, 0) {
				continue
			}
			drift := d.end/d.start - 1
			noise := max(3*max(d.startNoise, d.endNoise), DriftLimit)
			if math.Abs(drift) > noise {
				way := "slower"
				if drift > 0 {
					way = "faster"
				}
				h.Reasons = append(h.Reasons, fmt.Sprintf("the %s probe ran %.0f%% %s at the end than at the start (beyond its noise, ±%.0f%%)", d.what, 100*math.Abs(drift), way, 100*noise))
			}
		}
	}
	h.Quiet = len(h.Reasons) == 0
	return h
}
