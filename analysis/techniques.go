package analysis

import (
	"slices"
	"sort"

	"virtbench/internal/results"
	"virtbench/internal/stats"
)

// An aspect in which two VM variants of a run may differ and be compared:
// a label declared with a technique (results.Label.Technique), every
// other setting equal. The aspects are those the run's vocabulary
// declares.
func aspects(v results.Vocabulary) []results.Label {
	var out []results.Label
	for _, l := range v.SortedLabels() {
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
	// Devices marks a comparison of a VM's device models (the aspect's
	// label plays results.LabelDevices): paravirtual against emulated.
	Devices bool `json:"devices,omitempty"`
}

// setting returns a variant's setting key, with the technique's baseline
// value where the variant has none.
func setting(voc results.Vocabulary, labels map[string]string, key string) string {
	if v, ok := labels[key]; ok {
		return v
	}
	if l, ok := voc.Label(key); ok && l.Technique != nil {
		return l.Technique.Off
	}
	return ""
}

// Techniques compares every pair of variants that differ in exactly one
// aspect, on the results the aspect is about.
// labels and roles are the variants' (results.Outcome).
func Techniques(m *results.Measurements, voc results.Vocabulary, labels map[string]map[string]string, roles map[string]results.Role) []Comparison {
	var variants []string
	for v := range labels {
		if roles[v].Class == results.ClassVM {
			variants = append(variants, v)
		}
	}
	sort.Strings(variants)
	var out []Comparison
	for _, asp := range aspects(voc) {
		for _, tv := range variants {
			value := setting(voc, labels[tv], asp.Key)
			at := slices.Index(asp.Technique.On, value)
			if at < 0 {
				continue
			}
			baselines := append([]string{asp.Technique.Off}, asp.Technique.On[:at]...)
			for _, bv := range variants {
				if !slices.Contains(baselines, setting(voc, labels[bv], asp.Key)) || !sameBut(voc, labels[tv], labels[bv], asp.Key) {
					continue
				}
				for _, sr := range m.Series {
					if sr.Variant != tv {
						continue
					}
					kind := voc.Kind(sr.Metric)
					ok := slices.Contains(asp.Technique.Compare, sr.Metric)
					if asp.Technique.Compare == nil {
						ok = sr.Instances == 1 && kind.Speed()
					}
					lower := kind.Better == results.LowerIsBetter
					bk := sr.Key
					bk.Variant = bv
					base := m.Lookup(bk)
					// A single density step is one value a side: no
					// comparison to speak of.
					if !ok || base == nil || len(sr.Values) < minCompared || len(base.Values) < minCompared {
						continue
					}
					c := Comparison{Aspect: asp.Key, Technique: tv, Value: value, Baseline: bv, Workload: sr.Workload, Instances: sr.Instances, Metric: sr.Metric, Devices: asp.Role == results.LabelDevices}
					var fine bool
					if c.Ratio, c.Lo, c.Hi, fine = speedup(base.Values, sr.Values, lower); !fine {
						continue
					}
					c.P, _ = stats.MannWhitney(base.Values, sr.Values)
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// sameBut reports whether two variants' configurations agree on every
// declared setting but key.
func sameBut(voc results.Vocabulary, a, b map[string]string, key string) bool {
	for _, l := range voc.SortedLabels() {
		if l.Setting() && l.Key != key && setting(voc, a, l.Key) != setting(voc, b, l.Key) {
			return false
		}
	}
	return true
}

// techniqueNotes returns the declared notes (results.Technique.Note) of
// the aspects cs compares, in the order they first appear.
func techniqueNotes(voc results.Vocabulary, cs []Comparison) []string {
	var seen []string
	var out []string
	for _, c := range cs {
		if slices.Contains(seen, c.Aspect) {
			continue
		}
		seen = append(seen, c.Aspect)
		if l, ok := voc.Label(c.Aspect); ok && l.Technique != nil && l.Technique.Note != "" {
			out = append(out, l.Technique.Note)
		}
	}
	return out
}
