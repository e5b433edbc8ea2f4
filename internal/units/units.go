// Package units writes a measured value in its unit, scaled with an SI or
// IEC prefix as benchstat does (golang.org/x/perf/benchunit): the one
// way every output and every judgement's words write a figure. It knows
// units and numbers only.
package units

import (
	"math"
	"strconv"

	"golang.org/x/perf/benchunit"
)

// prefixedUnits are the units Format writes with a prefix of their own
// (ms, MiB); others take a prefix only as a multiplier (27.5k op/s).
var prefixedUnits = map[string]bool{"sec": true, "B": true, "B/s": true, "sec/op": true}

// Format formats v in unit with an SI or IEC prefix: "2.13ms", "12.5MiB",
// "6.01k op/s"; a count or share below 10000 (cores, tasks, instances) as
// a plain number of four digits: "0.0484 cores", "6 tasks".
func Format(v float64, unit string) string {
	if !prefixedUnits[unit] && unit != "op/s" && math.Abs(v) < 1e4 {
		s := strconv.FormatFloat(v, 'g', 4, 64)
		if unit == "" {
			return s
		}
		return s + " " + unit
	}
	switch unit {
	case "sec":
		return benchunit.Scale(v, benchunit.Decimal) + "s"
	case "B":
		return benchunit.Scale(v, benchunit.Binary) + "B"
	case "B/s":
		return benchunit.Scale(v, benchunit.Binary) + "B/s"
	case "sec/op":
		return benchunit.Scale(v, benchunit.Decimal) + "s/op"
	}
	s := benchunit.Scale(v, benchunit.Decimal)
	if unit == "" {
		return s
	}
	return s + " " + unit
}
