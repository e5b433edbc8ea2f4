package reports

import (
	"fmt"
	"slices"
	"sort"

	"virtbench/internal/results"
)

// An aspect in which two VM variants of a run may differ and be compared:
// a label declared with a technique (results.Label.Technique), every
// other setting equal. The aspects are the declared ones.
func aspects() []results.Label {
	var out []results.Label
	for _, l := range results.Labels() {
		if l.Technique != nil {
			out = append(out, l)
		}
	}
	return out
}

// minCompared is the fewest values a side needs to be compared.
const minCompared = 3

// Comparison is a technique and its baseline compared on one result:
// Ratio above 1 means the technique's variant did better (faster, or
// smaller), with Lo and Hi from the confidence intervals (or ranges) and
// P the Mann-Whitney U test's.
type Comparison struct {
	Aspect    string  `json:"aspect"`
	Technique string  `json:"technique"` // the variant with the technique
	Value     string  `json:"value"`     // its label value: which technique
	Baseline  string  `json:"baseline"`  // the variant without
	Workload  string  `json:"workload"`
	Instances int     `json:"instances"`
	Metric    string  `json:"metric"`
	Ratio     float64 `json:"ratio"`
	Lo        float64 `json:"lo"`
	Hi        float64 `json:"hi"`
	P         float64 `json:"p"`
}

// setting returns a variant's setting key, with the technique's baseline
// value where the variant has none.
func setting(labels map[string]string, key string) string {
	if v, ok := labels[key]; ok {
		return v
	}
	if l, ok := results.LabelOf(key); ok && l.Technique != nil {
		return l.Technique.Off
	}
	return ""
}

// Techniques compares every pair of variants that differ in exactly one
// aspect, on the results the aspect is about.
// labels and roles are the variants' (results.Outcome).
func Techniques(samples []results.Sample, labels map[string]map[string]string, roles map[string]results.Role) []Comparison {
	var kept []results.Sample
	for _, s := range samples {
		if !s.Warmup && !s.Failed() {
			kept = append(kept, s)
		}
	}
	vals, _, order := samplesByKey(kept)
	var variants []string
	for v := range labels {
		if roles[v].Class == results.ClassVM {
			variants = append(variants, v)
		}
	}
	sort.Strings(variants)
	var out []Comparison
	for _, asp := range aspects() {
		for _, tv := range variants {
			value := setting(labels[tv], asp.Key)
			at := slices.Index(asp.Technique.On, value)
			if at < 0 {
				continue
			}
			baselines := append([]string{asp.Technique.Off}, asp.Technique.On[:at]...)
			for _, bv := range variants {
				if !slices.Contains(baselines, setting(labels[bv], asp.Key)) || !sameBut(labels[tv], labels[bv], asp.Key) {
					continue
				}
				for _, k := range order {
					if k.Driver != tv {
						continue
					}
					kind := results.KindOf(k.Metric)
					ok := slices.Contains(asp.Technique.Compare, k.Metric)
					if asp.Technique.Compare == nil {
						ok = k.Instances == 1 && kind.Speed()
					}
					lower := kind.Better == results.LowerIsBetter
					bk := k
					bk.Driver = bv
					// A single density step is one value a side: no
					// comparison to speak of.
					if !ok || len(vals[k]) < minCompared || len(vals[bk]) < minCompared {
						continue
					}
					c := Comparison{Aspect: asp.Key, Technique: tv, Value: value, Baseline: bv, Workload: k.Workload, Instances: k.Instances, Metric: k.Metric}
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
// declared setting but key.
func sameBut(a, b map[string]string, key string) bool {
	for _, l := range results.Labels() {
		if l.Setting() && l.Key != key && setting(a, l.Key) != setting(b, l.Key) {
			return false
		}
	}
	return true
}

// techniqueNotes returns the declared notes (results.Technique.Note) of
// the aspects cs compares, in the order they first appear.
func techniqueNotes(cs []Comparison) []string {
	var seen []string
	var out []string
	for _, c := range cs {
		if slices.Contains(seen, c.Aspect) {
			continue
		}
		seen = append(seen, c.Aspect)
		if l, ok := results.LabelOf(c.Aspect); ok && l.Technique != nil && l.Technique.Note != "" {
			out = append(out, l.Technique.Note)
		}
	}
	return out
}

// techniqueHeader is the header of the comparison tables.
var techniqueHeader = []string{"aspect", "technique", "baseline", "workload", "metric", "technique vs baseline", "range", "p"}

// devices reports whether a comparison is of a VM's device models
// (results.LabelDevices): paravirtual against emulated.
func devices(c Comparison) bool {
	l, ok := results.LabelOf(c.Aspect)
	return ok && l.Role == results.LabelDevices
}

// techniqueRows returns one formatted row per comparison that only
// keeps (every one for nil).
func techniqueRows(cs []Comparison, only func(Comparison) bool) [][]string {
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
