package reports

import (
	"fmt"
	"io"
	"strings"

	"virtbench/analysis"
	"virtbench/internal/units"
)

// headroomHeader and headroomRows are the table of every host limit at
// the top of a variant's density sweep.
var headroomHeader = []string{"variant", "limit", "allows", "before the sweep", "at its top", "per instance", "left", "what it is", "to raise it"}

func headroomRows(hs []analysis.SweepHeadroom) [][]string {
	var rows [][]string
	for _, h := range hs {
		for _, l := range h.Limits {
			f := func(v float64) string { return units.Format(v, l.Unit) }
			per := "-"
			if l.PerInstance > 0 {
				per = f(l.PerInstance)
			}
			rows = append(rows, []string{h.Variant, l.Name, formatCount(l.Allows), f(l.Before) + " of " + f(l.Budget), f(l.Top), per, f(l.Left), l.Doc, l.Raise})
		}
	}
	return rows
}

// headroomLines writes, for a variant's sweep, what stopped it and the
// limits that bind next, with how to raise each.
func headroomLines(w io.Writer, hs []analysis.SweepHeadroom, v string) {
	for _, h := range hs {
		if h.Variant != v {
			continue
		}
		var next []string
		for _, l := range h.Next(2) {
			next = append(next, fmt.Sprintf("%s at %s (%s left, %s per instance; %s)", l.Name, formatCount(l.Allows), units.Format(l.Left, l.Unit), units.Format(l.PerInstance, l.Unit), l.Raise))
		}
		if len(next) > 0 {
			fmt.Fprintf(w, "  %-18s %s\n", "Next limits:", strings.Join(next, "; "))
		}
	}
}

// HeadroomModel says how the headroom table reads.
const HeadroomModel = "Every host limit a sweep read at its top: what each instance took of it (its use at the top less its use before the sweep, over the instances), what is left, and the instances it allows at that cost; the limit allowing the fewest binds first, and raising it exposes the next."
