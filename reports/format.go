package reports

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"golang.org/x/perf/benchunit"

	"virtbench/internal/results"
)

// prefixedUnits are the units FormatValue writes with a prefix of their
// own (ms, MiB); others take a prefix only as a multiplier (27.5k op/s).
var prefixedUnits = map[string]bool{"sec": true, "B": true, "B/s": true, "sec/op": true}

// FormatValue formats v in unit with an SI or IEC prefix: "2.13ms",
// "12.5MiB", "6.01k op/s"; a count or share below 10000 (cores, tasks,
// instances) as a plain number of four digits: "0.0484 cores", "6 tasks".
func FormatValue(v float64, unit string) string {
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

// benchName turns a metric into a Go benchmark name part: "cpu.sha256" →
// "CpuSha256", "startup" → "Startup".
func benchName(metric string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(metric, func(r rune) bool { return r == '.' || r == '_' || r == '-' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// LimitsText says which cgroup limits of memory and CPU a run ran under
// (results.Provenance), with the cgroups that set them, or that it ran
// under none.
func LimitsText(p results.Provenance) string { return limitsText(p, true) }

// limitsText is LimitsText, the cgroups' paths left out unless where.
func limitsText(p results.Provenance, where bool) string {
	at := func(path string) string {
		if !where {
			return ""
		}
		return " (" + path + ")"
	}
	var parts []string
	if p.MemoryLimitBytes > 0 {
		parts = append(parts, fmt.Sprintf("memory %s%s", FormatValue(float64(p.MemoryLimitBytes), "B"), at(p.MemoryLimitAt)))
	}
	if p.CPULimitCores > 0 {
		parts = append(parts, fmt.Sprintf("CPU %.2f cores%s", p.CPULimitCores, at(p.CPULimitAt)))
	}
	if len(parts) == 0 {
		return "no cgroup memory limit or CPU quota"
	}
	return strings.Join(parts, "; ")
}
