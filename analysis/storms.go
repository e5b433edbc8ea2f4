package analysis

import (
	"fmt"
	"strings"

	"virtbench/internal/results"
	"virtbench/internal/units"
)

// Storm is one variant's start storms of one workload at one count: how
// its starts spread when every instance starts at once, and how many a
// second the host brought up, against the variant's start alone.
type Storm struct {
	Variant   string `json:"variant"`
	Workload  string `json:"workload"`
	Instances int    `json:"instances"`
	// P50 and P99 are of every start to READY of the storms at this count
	// (storm.startup over all repetitions).
	P50    float64 `json:"p50_sec"`
	P99    float64 `json:"p99_sec"`
	Starts int     `json:"starts"`
	Failed int     `json:"failed"`
	// Alone is the median start of the variant's storm of one, else of an
	// ordinary single-instance trial (startup); 0 where neither ran.
	Alone float64 `json:"alone_sec"`
	// Rate and RatePerCore are the storms' medians: instances READY per
	// second, and that per host CPU, with Rate's range.
	Rate        float64 `json:"rate"`
	RateLo      float64 `json:"rate_lo"`
	RateHi      float64 `json:"rate_hi"`
	RatePerCore float64 `json:"rate_per_core"`
}

// StormAnchors are the published start rates a storm's figures are set
// beside.
var StormAnchors = []string{
	"Firecracker's specification: a steady 5 microVMs per second per host core (its NSDI 2020 paper: up to 150 per second per host)",
	"Firecracker's demo: 4,000 microVMs in 78 s, 52 per second",
	"RunD (USENIX ATC 2022): 200 secure containers in one second",
}

// Storms returns every storm a run measured, by variant, workload and
// count, in the order they were measured.
func (a *Analysis) Storms() []Storm {
	x := a.Index
	var out []Storm
	for _, s := range x.Metric(results.MetricStormStartup) {
		st := Storm{Variant: s.Variant, Workload: s.Workload, Instances: s.Instances, P50: s.Median, P99: s.P99, Starts: s.N, Failed: s.Failed}
		for _, r := range x.Of(s.Variant, results.MetricStormRate) {
			if r.Workload == s.Workload && r.Instances == s.Instances {
				st.Rate = r.Median
				st.RateLo, st.RateHi = r.Range()
			}
		}
		for _, r := range x.Of(s.Variant, results.MetricStormRatePerCore) {
			if r.Workload == s.Workload && r.Instances == s.Instances {
				st.RatePerCore = r.Median
			}
		}
		st.Alone = stormAlone(x, s)
		out = append(out, st)
	}
	return out
}

// stormAlone is the median start of s's variant and workload started
// alone: its storm of one, else its single-instance trial.
func stormAlone(x *Index, s results.Summary) float64 {
	for _, r := range x.Of(s.Variant, results.MetricStormStartup) {
		if r.Workload == s.Workload && r.Instances == 1 {
			return r.Median
		}
	}
	for _, r := range x.Of(s.Variant, results.MetricStartup) {
		if r.Workload == s.Workload && r.Instances == 1 {
			return r.Median
		}
	}
	return 0
}

// largestStorms returns, per variant, its largest storm with a rate, in
// the order the variants first stormed.
func largestStorms(storms []Storm) []Storm {
	idx := map[string]int{}
	var out []Storm
	for _, s := range storms {
		if s.Rate <= 0 {
			continue
		}
		i, ok := idx[s.Variant]
		switch {
		case !ok:
			idx[s.Variant] = len(out)
			out = append(out, s)
		case s.Instances > out[i].Instances:
			out[i] = s
		}
	}
	return out
}

// stormSentence says how fast each class of variant starts in its
// largest storm: "containers start 310 per second per core (runc, a
// storm of 128), VMs 4.1 (qemu-template, 128)"; "" without storms.
func stormSentence(storms []Storm, roles map[string]results.Role) string {
	var parts []string
	for _, class := range []struct {
		class results.Class
		name  string
	}{{results.ClassOSLevel, "containers"}, {results.ClassSandbox, "sandboxed containers"}, {results.ClassVM, "VMs"}} {
		var vs []string
		for _, s := range largestStorms(storms) {
			if roles[s.Variant].Class == class.class {
				vs = append(vs, fmt.Sprintf("%s %s (storm of %d)", s.Variant, units.Format(s.RatePerCore, ""), s.Instances))
			}
		}
		if len(vs) > 0 {
			parts = append(parts, class.name+": "+strings.Join(vs, ", "))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "in start storms, instances READY per second per host core: " + strings.Join(parts, "; ")
}
