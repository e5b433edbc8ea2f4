package analysis

import (
	"math"
	"sort"
	"strings"

	"virtbench/internal/results"
)

// LimitHeadroom is one host limit at the top of a density sweep: what it
// allows (Budget), what was in use before the sweep's first instance and
// at its top, what each instance took, what is left, and how many
// instances it allows in all at that cost.
type LimitHeadroom struct {
	results.HostLimit
	Budget      float64 `json:"budget"`
	Before      float64 `json:"before"`
	Top         float64 `json:"top"`
	PerInstance float64 `json:"per_instance"`
	Left        float64 `json:"left"`
	// Allows is Unbounded where the instances took none of it.
	Allows int `json:"allows"`
}

// SweepHeadroom is every limit's headroom at the top of a variant's
// density sweep, the limit that allows the fewest instances first.
type SweepHeadroom struct {
	Variant string `json:"variant"`
	Reached int    `json:"reached"`
	// Stopped is what stopped the sweep (results.LabelStopLimit).
	Stopped string          `json:"stopped"`
	Limits  []LimitHeadroom `json:"limits"`
}

// Headrooms returns the headroom of every limit each density sweep read,
// per variant in the order the sweeps ran.
func (a *Analysis) Headrooms() []SweepHeadroom {
	x := a.Index
	var out []SweepHeadroom
	for _, v := range x.Variants(results.MetricDensityReached, false) {
		reached, _ := x.Largest(v, results.MetricDensityReached)
		sh := SweepHeadroom{Variant: v, Reached: int(reached.Max), Stopped: reached.Labels[results.LabelStopLimit]}
		for _, hl := range results.HostLimits {
			budget, okB := x.Largest(v, results.LimitBudgetPrefix+hl.Name)
			top, okT := x.Largest(v, results.LimitUsedPrefix+hl.Name)
			before, okF := at(x.Of(v, results.LimitUsedPrefix+hl.Name), 0)
			if !okB || !okT || !okF || top.Instances == 0 {
				continue
			}
			l := LimitHeadroom{HostLimit: hl, Budget: budget.Max, Before: before.Max, Top: top.Max, Left: budget.Max - top.Max, Allows: Unbounded}
			if taken := top.Max - before.Max; taken > 0 {
				l.PerInstance = taken / float64(top.Instances)
				l.Allows = top.Instances + int(math.Floor(max(l.Left, 0)/l.PerInstance))
			}
			sh.Limits = append(sh.Limits, l)
		}
		sort.SliceStable(sh.Limits, func(i, j int) bool { return less(sh.Limits[i].Allows, sh.Limits[j].Allows) })
		if len(sh.Limits) > 0 {
			out = append(out, sh)
		}
	}
	return out
}

// Next returns the limits that bind next after what stopped the sweep:
// the first n of those that allow the fewest instances, the one that
// stopped it (where it is a limit here) left out.
func (sh SweepHeadroom) Next(n int) []LimitHeadroom {
	var out []LimitHeadroom
	for _, l := range sh.Limits {
		if len(out) < n && l.Allows != Unbounded && !strings.EqualFold(l.Name, sh.Stopped) {
			out = append(out, l)
		}
	}
	return out
}

// at returns the summary of sums at instances instances.
func at(sums []results.Summary, instances int) (results.Summary, bool) {
	for _, s := range sums {
		if s.Instances == instances {
			return s, true
		}
	}
	return results.Summary{}, false
}
