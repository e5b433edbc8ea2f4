package reports

import (
	"fmt"
	"slices"
	"sort"

	"virtbench/guest"
	"virtbench/internal/results"
)

// The aspects in which two VM variants of a run may differ and be compared:
// one setting each, every other configuration label equal.
const (
	AspectDevices = "devices" // virtio against emulated devices
	AspectBoot    = "boot"    // from a snapshot against a cold boot
	AspectKSM     = "ksm"     // KSM on against off
)

// aspects says, per aspect, the label's value of the technique and of its
// baseline (a variant without the label has the baseline), and which
// results to compare, each in the direction its kind declares.
var aspects = []struct {
	key, technique, baseline string
	metrics                  []string // nil: every single-instance speed (results.Kind.Speed)
}{
	{AspectDevices, "virtio", "emulated", nil},
	{AspectBoot, "snapshot", "cold", []string{results.MetricStartup, results.MetricPSS}},
	{AspectKSM, "on", "off", []string{results.MetricHostMemDrop, results.MetricPSS, results.MetricDensityMemDrop}},
}

// configLabels are the labels that describe a VM's configuration; two
// variants compared on one aspect agree on all the others.
var configLabels = []string{"machine", "devices", "image", "accel", AspectBoot, AspectKSM}

// minCompared is the fewest values a side needs to be compared.
const minCompared = 3

// Comparison is a technique and its baseline compared on one result:
// Ratio above 1 means the technique's variant did better (faster, or
// smaller), with Lo and Hi from the confidence intervals (or ranges) and
// P the Mann-Whitney U test's.
type Comparison struct {
	Aspect    string  `json:"aspect"`
	Technique string  `json:"technique"` // the variant with the technique
	Baseline  string  `json:"baseline"`  // the variant without
	Workload  string  `json:"workload"`
	Instances int     `json:"instances"`
	Metric    string  `json:"metric"`
	Ratio     float64 `json:"ratio"`
	Lo        float64 `json:"lo"`
	Hi        float64 `json:"hi"`
	P         float64 `json:"p"`
}

// label returns a variant's configuration label, with the baseline's value
// where the variant has none.
func label(labels map[string]string, key string) string {
	if v, ok := labels[key]; ok {
		return v
	}
	for _, a := range aspects {
		if a.key == key {
			return a.baseline
		}
	}
	return ""
}

// Techniques compares every pair of variants that differ in exactly one
// aspect, on the results the aspect is about.
func Techniques(samples []results.Sample, labels map[string]map[string]string) []Comparison {
	var kept []results.Sample
	for _, s := range samples {
		if !s.Warmup && !s.Failed() {
			kept = append(kept, s)
		}
	}
	vals, _, order := samplesByKey(kept)
	var variants []string
	for v, l := range labels {
		if l["machine"] != "" { // a VM: the others have no configuration labels
			variants = append(variants, v)
		}
	}
	sort.Strings(variants)
	var out []Comparison
	for _, asp := range aspects {
		for _, tv := range variants {
			if label(labels[tv], asp.key) != asp.technique {
				continue
			}
			for _, bv := range variants {
				if label(labels[bv], asp.key) != asp.baseline || !sameBut(labels[tv], labels[bv], asp.key) {
					continue
				}
				for _, k := range order {
					if k.Driver != tv {
						continue
					}
					kind := results.KindOf(k.Metric)
					ok := slices.Contains(asp.metrics, k.Metric)
					if asp.metrics == nil {
						ok = k.Instances == 1 && kind.Speed()
					}
					lower := kind.Better == guest.LowerIsBetter
					bk := k
					bk.Driver = bv
					// A single density step is one value a side: no
					// comparison to speak of.
					if !ok || len(vals[k]) < minCompared || len(vals[bk]) < minCompared {
						continue
					}
					c := Comparison{Aspect: asp.key, Technique: tv, Baseline: bv, Workload: k.Workload, Instances: k.Instances, Metric: k.Metric}
					var fine bool
					if c.Ratio, c.Lo, c.Hi, fine = speedup(vals[bk], vals[k], lower); !fine {
						continue
					}
					c.P, _ = results.MannWhitney(vals[bk], vals[k])
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// sameBut reports whether two variants' configurations agree on every
// configuration label but key.
func sameBut(a, b map[string]string, key string) bool {
	for _, k := range configLabels {
		if k != key && label(a, k) != label(b, k) {
			return false
		}
	}
	return true
}

// techniqueHeader is the header of the comparison tables.
var techniqueHeader = []string{"aspect", "technique", "baseline", "workload", "metric", "technique vs baseline", "range", "p"}

// techniqueRows returns one formatted row per comparison of aspect (all
// aspects for "").
func techniqueRows(cs []Comparison, aspect string) [][]string {
	var rows [][]string
	for _, c := range cs {
		if aspect != "" && c.Aspect != aspect {
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
