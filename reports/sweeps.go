package reports

import (
	"fmt"

	"virtbench/analysis"
)

// ReachBars gives, per variant with a sweep, the count it reached and the
// model's count, the variant labelled with the limit that stopped it.
func ReachBars(checks []analysis.SweepCheck) Bars {
	var b Bars
	if len(checks) == 0 {
		return b
	}
	reached, model := BarSeries{Name: "reached by the sweep"}, BarSeries{Name: "the capacity model's count"}
	for _, sc := range checks {
		b.Labels = append(b.Labels, fmt.Sprintf("%s (stopped: %s)", sc.Variant, sc.Limit))
		reached.Values = append(reached.Values, float64(sc.Reached))
		model.Values = append(model.Values, float64(sc.Model))
	}
	b.Series = []BarSeries{reached, model}
	return b
}
