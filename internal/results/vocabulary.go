package results

import (
	"maps"
	"sort"
	"strings"
)

// Vocabulary is the meaning of the names a run's records use: every
// metric's kind, every label's declaration, every workload's part. A run
// records the vocabulary it used in run.json (Status.Vocabulary), as
// benchfmt carries better= in its stream, so that whoever reads the run
// (an analysis that links no driver, a campaign's controller of another
// version) reads it as the run meant it.
type Vocabulary struct {
	Metrics   map[string]MetricKind `json:"metrics"`
	Labels    map[string]Label      `json:"labels"`
	Workloads map[string]Workload   `json:"workloads"`
}

// Linked returns the vocabulary this process declares: the runner's own
// metrics and labels (this package's), and what the drivers and the
// agent's workloads it links declared (Declare, DeclareLabel,
// DeclareWorkload). The runner records it when a run starts; an analysis
// reads a run's own (Status.Vocabulary) and falls back to this one only
// for a run directory that has none.
func Linked() Vocabulary {
	v := Vocabulary{Metrics: maps.Clone(kinds), Labels: maps.Clone(labels), Workloads: map[string]Workload{}}
	declared.RLock()
	defer declared.RUnlock()
	maps.Copy(v.Metrics, declared.m)
	maps.Copy(v.Labels, declared.labels)
	maps.Copy(v.Workloads, declared.workloads)
	return v
}

// metric returns a declared metric's kind.
func (v Vocabulary) metric(name string) (MetricKind, bool) {
	k, ok := v.Metrics[name]
	return k, ok
}

// Kind returns what metric is: a declared one, a start phase
// (PhaseMetricPrefix) or a boot stage (BootMetricPrefix). Anything else is
// FamilyOther, with no unit and no direction.
func (v Vocabulary) Kind(metric string) MetricKind {
	if k, ok := v.metric(metric); ok {
		return k
	}
	if k, ok := prefixKind(metric); ok {
		return k
	}
	return MetricKind{Family: FamilyOther}
}

// Declared reports whether metric has a declaration (Kind's answer is
// then not a guess).
func (v Vocabulary) Declared(metric string) bool {
	_, ok := v.metric(metric)
	_, prefixed := prefixKind(metric)
	return ok || prefixed
}

// UnitImprovesDownwards reports whether a declared metric in unit
// improves downwards (LowerIsBetter).
func (v Vocabulary) UnitImprovesDownwards(unit string) bool {
	for _, k := range v.Metrics {
		if k.Unit == unit && k.Better == LowerIsBetter {
			return true
		}
	}
	return false
}

// MetricsOn returns the declared metrics of a dimension of performance,
// sorted.
func (v Vocabulary) MetricsOn(d Dimension) []string {
	var out []string
	for name, k := range v.Metrics {
		if k.Dimension == d {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Label returns the declaration of a label key.
func (v Vocabulary) Label(key string) (Label, bool) {
	l, ok := v.Labels[key]
	return l, ok
}

// SortedLabels returns every declared label, sorted by key.
func (v Vocabulary) SortedLabels() []Label {
	out := make([]Label, 0, len(v.Labels))
	for _, l := range v.Labels {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Workload returns the declared workload name.
func (v Vocabulary) Workload(name string) (Workload, bool) {
	w, ok := v.Workloads[name]
	return w, ok
}

// BaselineWorkload reports whether name is the declared workload that
// does nothing once ready (Workload.Baseline).
func (v Vocabulary) BaselineWorkload(name string) bool {
	w, ok := v.Workload(name)
	return ok && w.Baseline
}

// MissingIn returns, as one line, the metrics, label keys and workloads
// that m's series name and v does not declare (at most eight, then "…"),
// or "": a reader sees what it cannot interpret.
func (v Vocabulary) MissingIn(m *Measurements) string {
	seen := map[string]bool{}
	for _, s := range m.Series {
		if !v.Declared(s.Metric) {
			seen["metric "+s.Metric] = true
		}
		if _, ok := v.Workload(s.Workload); s.Workload != "" && s.Workload != ImageWorkload && !ok {
			seen["workload "+s.Workload] = true
		}
		for k := range s.Labels {
			if _, ok := v.Label(k); !ok {
				seen["label "+k] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	if len(out) > 8 {
		out = append(out[:8:8], "…")
	}
	return strings.Join(out, ", ")
}

// ImageWorkload is the workload name of the samples of a variant's
// shared image (its disk footprint, recorded once per variant).
const ImageWorkload = "image"
