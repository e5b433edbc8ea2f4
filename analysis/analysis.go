package analysis

import (
	"strings"
	"virtbench/internal/results"
)

// Analysis is what the outputs say about a run, computed once from its
// measurements; every output (terminal, Markdown, CSV, benchfmt, JSON,
// charts, HTML, metrics) renders it.
type Analysis struct {
	Run   *Run
	Index *Index
	// Roles are the variants' roles as the run recorded them, and
	// Baseline the name of the one the others are set against ("" when
	// none ran).
	Roles    map[string]results.Role
	Baseline string
	// Ratios are the workload results relative to the baseline.
	Ratios []Ratio
	// Capacity has a row per variant and host (this one, and the planned
	// one where given).
	Capacity []Capacity
	// Sweeps set what each density sweep reached beside the model's count.
	Sweeps []SweepCheck
	// Claims are judged on this host's capacity rows and the summaries.
	Claims []Claim
	// Techniques compares VM variants that differ in one aspect: virtio
	// against emulated devices, snapshot or template against cold boot,
	// KSM on against off; TechniqueNotes say what the compared techniques
	// share and what follows for isolation.
	Techniques     []Comparison
	TechniqueNotes []string
	// Lessons are the classroom section: what each kind of
	// virtualization that ran is, with its figures; DevicesNote explains
	// a device comparison that found no difference.
	Lessons     []Lesson
	DevicesNote string
	// Host is how fast and how quiet the host was (its calibration).
	Host HostState
}

// Analyze computes r's Analysis; plan, when set, is a host size to plan
// capacity for besides the run's own.
func Analyze(r *Run, plan *HostSize) *Analysis {
	o := r.Status.Outcome
	voc := r.Vocabulary
	x := NewIndex(r.Measurements.Summarize(voc), voc)
	a := &Analysis{Run: r, Index: x, Roles: o.Roles(), Baseline: o.Baseline(), Capacity: EstimateCapacity(x, r.hostSizes(plan))}
	a.Ratios = PerfRatios(r.Measurements, voc, a.Baseline)
	for i, rt := range a.Ratios {
		role := a.Roles[rt.Variant]
		switch {
		case rt.Same || role.Class == results.ClassNone:
		case rt.Lo > 1:
			a.Ratios[i].Note = explainFaster(rt, role, o.Labels[rt.Variant], r.Provenance, voc)
		case rt.Hi < 1:
			a.Ratios[i].Note = strings.Join(storageNote(role, voc, rt.Workload), "; ")
		}
	}
	a.Sweeps = SweepChecks(x, a.Capacity)
	a.Claims = claims(claimContext{idx: x, roles: a.Roles, ratios: a.Ratios, caps: a.HereCapacity(), storms: a.Storms()})
	a.Techniques = Techniques(r.Measurements, voc, o.Labels, a.Roles)
	a.TechniqueNotes = techniqueNotes(voc, a.Techniques)
	a.Lessons = Classroom(r, a)
	a.DevicesNote = devicesNote(a.Techniques, a.Roles)
	a.Host = JudgeHost(r.Provenance)
	return a
}

// HereCapacity returns the capacity rows of the run's own host.
func (a *Analysis) HereCapacity() []Capacity {
	var here []Capacity
	for _, c := range a.Capacity {
		if c.Host == ThisHost {
			here = append(here, c)
		}
	}
	return here
}
