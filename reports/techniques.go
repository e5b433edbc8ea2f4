package reports

import (
	"fmt"

	"virtbench/analysis"
)

// techniqueHeader is the header of the comparison tables.
var techniqueHeader = []string{"aspect", "technique", "baseline", "workload", "metric", "technique vs baseline", "range", "p"}

// techniqueRows returns one formatted row per comparison that only
// keeps (every one for nil).
func techniqueRows(cs []analysis.Comparison, only func(analysis.Comparison) bool) [][]string {
	var rows [][]string
	for _, c := range cs {
		if only != nil && !only(c) {
			continue
		}
		wl := c.Workload
		if c.Instances > 1 {
			wl = fmt.Sprintf("%s ×%d", wl, c.Instances)
		}
		rows = append(rows, []string{c.Aspect, c.Technique, c.Baseline, wl, c.Metric, fmt.Sprintf("%.2f×", c.Ratio),
			fmt.Sprintf("%.2f-%.2f", c.Lo, c.Hi), fmt.Sprintf("%.3f", c.P)})
	}
	return rows
}
