package analysis

import (
	"fmt"

	"virtbench/internal/results"
)

// SweepCheck sets what a density sweep reached beside the count the
// capacity model predicts for this host, with the limit that stopped the
// sweep, and says which cost the model got wrong where the two differ by
// more than a tenth.
type SweepCheck struct {
	Variant string `json:"variant"`
	Reached int    `json:"reached"`
	// Limit is what stopped the sweep (a resource, results.StopLatency,
	// StopFailed or StopMax) and Reason its words.
	Limit  string `json:"stop_limit"`
	Reason string `json:"stop_reason"`
	// Model is the capacity model's count of idle instances on this host
	// and Binding the resource it found binding.
	Model   int    `json:"model"`
	Binding string `json:"model_binding"`
	// LimitModel is the model's count for the resource that stopped the
	// sweep, where that is a resource the model plans with and not the
	// binding one; 0 otherwise.
	LimitModel int    `json:"limit_model,omitempty"`
	Note       string `json:"note,omitempty"`
}

// agreement is how close a sweep and the model must come to agree.
const agreement = 0.10

// SweepChecks returns a check per variant with a density sweep and a
// capacity row for this host.
func SweepChecks(x *Index, caps []Capacity) []SweepCheck {
	var out []SweepCheck
	for _, c := range caps {
		if c.Host != ThisHost {
			continue
		}
		s, ok := x.Largest(c.Variant, results.MetricDensityReached)
		if !ok {
			continue
		}
		sc := SweepCheck{Variant: c.Variant, Reached: int(s.Max), Limit: s.Labels[results.LabelStopLimit], Reason: s.Labels[results.LabelStopReason], Model: c.Idle, Binding: c.Binding}
		for _, l := range c.Limits {
			if l.Resource == sc.Limit && l.Resource != sc.Binding && l.Count > 0 {
				sc.LimitModel = l.Count
			}
		}
		sc.Note = sc.judge()
		out = append(out, sc)
	}
	return out
}

// judge says how the sweep and the model differ, or "" where they agree.
func (sc SweepCheck) judge() string {
	off := float64(sc.Reached-sc.Model) / float64(max(sc.Model, 1))
	limitOff := float64(sc.Reached-sc.LimitModel) / float64(max(sc.LimitModel, 1))
	switch {
	case sc.Limit == "":
		return "" // a run from before sweeps recorded their limit
	case sc.Limit == results.StopMax:
		return fmt.Sprintf("the sweep stopped at the scenario's max, %.0f%% of the model's count, before any host limit", 100*float64(sc.Reached)/float64(max(sc.Model, 1)))
	case off >= -agreement && off <= agreement:
		return ""
	case sc.Limit == results.StopFailed || sc.Limit == results.StopLatency:
		return fmt.Sprintf("the sweep stopped on a %s, which the model does not plan with", sc.Limit)
	case off < 0 && sc.Limit == sc.Binding:
		return fmt.Sprintf("%s ran out %.0f%% earlier than the model said: its %s cost per instance was too low (it grows with the instances running)", sc.Limit, -100*off, sc.Limit)
	case off < 0:
		return fmt.Sprintf("%s ran out before the model's binding %s: the model's %s cost per instance was too low", sc.Limit, sc.Binding, sc.Limit)
	case sc.Binding == results.ResourceCPU && sc.LimitModel > 0 && limitOff >= -agreement && limitOff <= agreement:
		// The model keeps CPU use under CPUCap, planning headroom; the
		// sweep stops only at saturation.
		return fmt.Sprintf("the sweep went %.0f%% past the model's count, which keeps the CPUs %.0f%% busy at most (headroom the sweep runs into); the model's %s count, %d, agrees with where %s stopped it", 100*off, 100*results.CPUCap, sc.Limit, sc.LimitModel, sc.Limit)
	default:
		return fmt.Sprintf("the sweep went %.0f%% past the model's count: the model's %s cost per instance was too high", 100*off, sc.Binding)
	}
}

// String writes a check on one line: "container: model 4897 (pids),
// reached 4702 (stopped: pids)", with its note.
func (sc SweepCheck) String() string {
	s := fmt.Sprintf("%s: model %d (%s binds), reached %d (stopped: %s)", sc.Variant, sc.Model, sc.Binding, sc.Reached, sc.Limit)
	if sc.LimitModel > 0 {
		s = fmt.Sprintf("%s: model %d (%s binds; %s would allow %d), reached %d (stopped: %s)", sc.Variant, sc.Model, sc.Binding, sc.Limit, sc.LimitModel, sc.Reached, sc.Limit)
	}
	if sc.Note != "" {
		s += "; " + sc.Note
	}
	return s
}
