package reports

import (
	"fmt"
	"strings"

	"virtbench/internal/results"
	"virtbench/internal/units"
)

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
		parts = append(parts, fmt.Sprintf("memory %s%s", units.Format(float64(p.MemoryLimitBytes), "B"), at(p.MemoryLimitAt)))
	}
	if p.CPULimitCores > 0 {
		parts = append(parts, fmt.Sprintf("CPU %.2f cores%s", p.CPULimitCores, at(p.CPULimitAt)))
	}
	if len(parts) == 0 {
		return "no cgroup memory limit or CPU quota"
	}
	return strings.Join(parts, "; ")
}
