package reports

import (
	"fmt"
	"io"
	"strings"

	"virtbench/analysis"
	"virtbench/internal/loadgen"
	"virtbench/internal/results"
	"virtbench/internal/units"
)

// capacityView is a capacity row as capacity.json and the tables write
// it: the model's figures, and why in words.
type capacityView struct {
	analysis.Capacity
	Why string `json:"why"`
}

// capacityViews returns the rows with their words.
func capacityViews(caps []analysis.Capacity) []capacityView {
	out := make([]capacityView, 0, len(caps))
	for _, c := range caps {
		out = append(out, capacityView{c, why(c)})
	}
	return out
}

// why says in words what the figures of c show: the binding resource with
// its cost and budget, what each other resource would allow, and what was
// not measured.
func why(c analysis.Capacity) string {
	var first string
	var others []string
	for _, l := range c.Limits {
		switch {
		case l.Resource == c.Binding:
			first = fmt.Sprintf("%s binds: %s per instance, %s usable", l.Resource, formatCost(l.Cost), formatBudget(l))
		case l.Count == analysis.Unbounded:
			others = append(others, fmt.Sprintf("%s is no limit (none used while idle)", l.Resource))
		default:
			others = append(others, fmt.Sprintf("%s would allow %d", l.Resource, l.Count))
		}
	}
	parts := append([]string{first}, others...)
	if len(c.Unmeasured) > 0 {
		parts = append(parts, "not measured: "+strings.Join(c.Unmeasured, ", "))
	}
	return strings.Join(parts, "; ")
}

// formatCost writes a cost in its unit.
func formatCost(c analysis.Cost) string {
	if c.Unit == "cores" {
		return fmt.Sprintf("%.3f cores", c.Value)
	}
	return units.Format(c.Value, c.Unit)
}

// formatBudget writes a limit's budget in its resource's unit.
func formatBudget(l analysis.Limit) string {
	switch l.Resource {
	case analysis.ResCPU:
		return fmt.Sprintf("%.1f cores", l.Budget)
	case analysis.ResPids:
		return fmt.Sprintf("%.0f tasks", l.Budget)
	}
	return units.Format(l.Budget, "B")
}

// formatCount writes a count, "unbounded" for Unbounded.
func formatCount(n int) string {
	if n == analysis.Unbounded {
		return "unbounded"
	}
	return fmt.Sprint(n)
}

// capacityHeader is the header of the capacity tables.
var capacityHeader = []string{"host", "variant", "idle instances", "range", "binding", "busy instances", "why"}

func capacityRows(caps []analysis.Capacity) [][]string {
	var rows [][]string
	for _, c := range capacityViews(caps) {
		rng := formatCount(c.IdleLo) + "-" + formatCount(c.IdleHi)
		if c.IdleLo == c.IdleHi {
			rng = "-"
		}
		rows = append(rows, []string{c.Host, c.Variant, formatCount(c.Idle), rng, c.Binding,
			fmt.Sprintf("%s (%s)", formatCount(c.Busy), c.BusyBinding), c.Why})
	}
	return rows
}

// WriteCapacity writes the estimates as a table with the model's budgets.
func WriteCapacity(w io.Writer, caps []analysis.Capacity) error {
	if err := writeTextTable(w, capacityHeader, capacityRows(caps)); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, CapacityModel)
	return err
}

// objectiveHeader is the header of the capacity-at-the-objective tables.
var objectiveHeader = []string{"host", "variant", "workload", "load and objective", "instances at the objective", "bracket", "binding", "p99 at that count", "achieved per instance", "steps", "idle instances", "why"}

// objectiveRows are the capacity rows that carry an objective sweep's
// answer, beside their idle count.
func objectiveRows(caps []analysis.Capacity) [][]string {
	var rows [][]string
	for _, c := range caps {
		o := c.Objective
		if o == nil {
			continue
		}
		p99, rate := "-", "-"
		if o.Instances > 0 {
			p99, rate = units.Format(o.P99, "sec"), units.Format(o.Rate, "op/s")
		}
		objective := fmt.Sprintf("%s each, p99 <= %s", units.Format(o.Offered, "op/s"), units.Format(o.SLOP99, "sec"))
		rows = append(rows, []string{c.Host, c.Variant, o.Workload, objective, fmt.Sprint(o.Instances), fmt.Sprintf("%d-%d", o.Lo, o.Hi), o.Binding,
			p99, rate, fmt.Sprint(o.Steps), formatCount(c.Idle), o.Why})
	}
	return rows
}

// ObjectiveModel states how capacity at the objective is found.
var ObjectiveModel = fmt.Sprintf("capacity at the objective: an objective sweep sends the workload's load profile to every running instance at once (open model: at its rate whatever the answers' latency) and passes a step when every instance's window achieved %.0f%% of the rate with its p99 and errors within the objective; it grows as a density sweep does until a step fails, then bisects between the last pass and the first failure to within %.0f%%; the bracket is the largest passing and the smallest failing count; the memory floor and the host's tasks still stop it.", 100*loadgen.AchievedShare, 100*results.ObjectiveTolerance)

// CapacityModel states the model in one sentence, for every output.
var CapacityModel = fmt.Sprintf("capacity: instances that fit = the minimum over resources of budget ÷ per-instance cost; budgets: memory from what was available when the run began down to max(20%%, 2 GiB) free, less what instances share (held once), CPU up to %.0f%% of the host's CPUs, tasks up to %.0f%% of its pid limit, %.0f%% of free disk; busy instances keep one CPU each busy; ranges from the 95%% confidence intervals.", 100*results.CPUCap, 100*results.PidsCap, 100*results.DiskCap)
