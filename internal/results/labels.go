package results

import (
	"fmt"
	"slices"
	"sort"
)

// LabelRole is the part a label key plays in the reports.
type LabelRole int

// labelRoles name the roles in run.json's vocabulary.
var labelRoles = []string{"note", "setting", "devices", "image", "accel", "accel_requested", "platform", "storage"}

// MarshalText writes the role's name.
func (r LabelRole) MarshalText() ([]byte, error) {
	if int(r) < 0 || int(r) >= len(labelRoles) {
		return nil, fmt.Errorf("results: label role %d", int(r))
	}
	return []byte(labelRoles[r]), nil
}

// UnmarshalText reads a role's name; one this virtbench does not know is
// a note, shown and not interpreted.
func (r *LabelRole) UnmarshalText(b []byte) error {
	*r = LabelNote
	if i := slices.Index(labelRoles, string(b)); i >= 0 {
		*r = LabelRole(i)
	}
	return nil
}

// The roles.
const (
	// LabelNote is a fact about an instance, shown but not interpreted.
	LabelNote LabelRole = iota
	// LabelSetting is a setting of a VM's configuration: two VM variants
	// compared on one technique agree on every other setting.
	LabelSetting
	// LabelDevices is the setting that chooses a VM's device models
	// (paravirtual or emulated), which the report explains.
	LabelDevices
	// LabelImage is the setting that chooses a VM's guest image; the
	// label's FullOS lists the values that boot a full OS.
	LabelImage
	// LabelAccel is the accelerator that ran an instance's guest
	// (AccelKVM, AccelTCG): a setting too.
	LabelAccel
	// LabelAccelRequested is the accelerator a variant asked for: an
	// accelerator, or a choice the driver resolves (qemu's auto).
	LabelAccelRequested
	// LabelPlatform is the platform of a sandbox that serves the
	// instance's system calls in user space.
	LabelPlatform
	// LabelStorage is what serves the instance's own files: a container
	// engine's storage driver, or a host directory bound in its place.
	LabelStorage
)

// The accelerators a VM's guest runs on, as LabelAccel values.
const (
	AccelKVM = "kvm" // hardware-assisted: the CPU runs the guest's code
	AccelTCG = "tcg" // QEMU's Tiny Code Generator: every guest instruction translated
)

// Label declares a label key that instances or samples carry: what it
// says and the part it plays in the reports. The runner declares its own
// here; drivers declare theirs in drivers.Info.Labels.
type Label struct {
	Key  string    `json:"key"`
	Doc  string    `json:"doc"`
	Role LabelRole `json:"role"`
	// Technique, when set, makes the label an aspect the reports
	// compare: VM variants that differ in it alone.
	Technique *Technique `json:"technique,omitempty"`
	// FullOS lists the values of a LabelImage that boot a full OS (the
	// traditional VM, with its init system and services).
	FullOS []string `json:"full_os,omitempty"`
}

// Technique is an aspect two VM variants may differ in: the label's values
// with a technique and its value without (an instance without the label
// has the baseline's), and the results the technique is about.
type Technique struct {
	// On lists the values with a technique, in order: each is compared
	// against Off and against the values before it.
	On  []string `json:"on"`
	Off string   `json:"off"`
	// Note says what the technique changes beyond its figures (what it
	// shares, what follows for isolation), for the report.
	Note string `json:"note,omitempty"`
	// Compare lists the metrics to compare; nil: every single-instance
	// speed (MetricKind.Speed).
	Compare []string `json:"compare,omitempty"`
}

// Setting reports whether the label is part of a VM's configuration.
func (l Label) Setting() bool {
	switch l.Role {
	case LabelSetting, LabelDevices, LabelImage, LabelAccel:
		return true
	}
	return l.Technique != nil
}

// The runner's own labels.
const (
	// LabelKSM says KSM merged the instance's pages ("on").
	LabelKSM = "ksm"
	// LabelGuestKernel and LabelMitigations are the release and CPU
	// vulnerability mitigations of an instance's own kernel, where the
	// agent reported them (a VM's).
	LabelGuestKernel = "guest_kernel"
	LabelMitigations = "mitigations"
	// LabelSaturated marks a density step whose host CPU was saturated
	// ("true"): its CPU per instance is a lower bound.
	LabelSaturated = "saturated"
	// LabelStopReason says why a density sweep stopped, and
	// LabelStopLimit which limit stopped it (a Resource, or StopLatency,
	// StopFailed, StopMax).
	LabelStopReason = "stop_reason"
	LabelStopLimit  = "stop_limit"
	// LabelFirstFailure is the smallest count an objective sweep found
	// failing its objective ("0": none did).
	LabelFirstFailure = "first_failure"
	// LabelCPUSource says where a density step's CPU per instance was
	// read: the instances' processes, or the host's busy time.
	LabelCPUSource = "source"
)

// The resources a host's capacity is planned in, as the capacity model
// names the binding one and a density sweep the limit that stopped it.
const (
	ResourceMemory = "memory"
	ResourceCPU    = "CPU"
	ResourcePids   = "pids"
	ResourceDisk   = "disk"
)

// The other limits that stop a density sweep (LabelStopLimit).
const (
	StopLatency = "latency" // the start latency limit
	StopFailed  = "failed start"
	StopMax     = "max" // the count the scenario sets
	// An objective sweep's limits besides the objective's own bounds
	// (loadgen's rate, errors and latency): windows with too few
	// requests for their p99 to mean anything, and a step whose windows
	// disagreed.
	StopWeak     = "weak"
	StopUnstable = "unstable"
)

// HostVariant names the samples of the host itself, measured with no
// instance (MetricHostMemNoise): not a variant of the scenario.
const HostVariant = "host"

// MitigationsNotExposed is the LabelMitigations of a kernel that does not
// list its mitigations, as the agent reports it (guest.NotExposed; a test
// keeps the two equal).
const MitigationsNotExposed = "not exposed"

// labels declares the runner's labels; drivers add theirs (DeclareLabel).
var labels = map[string]Label{
	LabelKSM: {Key: LabelKSM, Role: LabelSetting, Doc: "KSM merged the instance's identical pages with others'",
		Technique: &Technique{On: []string{"on"}, Off: "off", Compare: []string{MetricHostMemDrop, MetricPSS, MetricDensityMemDrop}}},
	LabelGuestKernel:  {Key: LabelGuestKernel, Doc: "the release of the instance's own kernel"},
	LabelMitigations:  {Key: LabelMitigations, Doc: "the CPU vulnerability mitigations of the instance's own kernel"},
	LabelSaturated:    {Key: LabelSaturated, Doc: "the host's CPU was saturated during the density step"},
	LabelStopReason:   {Key: LabelStopReason, Doc: "why the density sweep stopped"},
	LabelFirstFailure: {Key: LabelFirstFailure, Doc: "the smallest instance count an objective sweep found failing its objective (0: none did)"},
	LabelStopLimit:    {Key: LabelStopLimit, Doc: "the limit that stopped the density sweep: a resource, latency, failed start or max"},
	LabelCPUSource:    {Key: LabelCPUSource, Doc: "where a density step's CPU per instance was read: processes or host"},
}

// DeclareLabel registers a driver's label key. It panics on an empty key
// or one already declared with another meaning, as a registry does.
func DeclareLabel(l Label) {
	if l.Key == "" {
		panic("results: DeclareLabel of a label without a key")
	}
	if old, ok := Linked().Label(l.Key); ok && !sameLabel(old, l) {
		panic(fmt.Sprintf("results: label %q declared twice, as %+v and %+v", l.Key, old, l))
	}
	declared.Lock()
	defer declared.Unlock()
	declared.labels[l.Key] = l
}

func sameLabel(a, b Label) bool {
	return a.Key == b.Key && a.Doc == b.Doc && a.Role == b.Role && slices.Equal(a.FullOS, b.FullOS) &&
		(a.Technique == nil) == (b.Technique == nil) && (a.Technique == nil || slices.Equal(a.Technique.On, b.Technique.On) && a.Technique.Note == b.Technique.Note && a.Technique.Off == b.Technique.Off && slices.Equal(a.Technique.Compare, b.Technique.Compare))
}

// Role is what a variant is to the reports, recorded in run.json from its
// driver's declarations and its instances' labels: the reports read it
// instead of driver names and label spellings.
type Role struct {
	Class Class `json:"class"`
	// Baseline marks the variant the others are set against (the first
	// plain process of the run).
	Baseline bool `json:"baseline,omitempty"`
	// FullOS marks a VM whose guest is a full OS (LabelImage's FullOS).
	FullOS bool `json:"full_os,omitempty"`
	// Accel lists the accelerators the instances actually ran on, each
	// once, sorted; AccelRequested is what the variant asked for.
	Accel          []string `json:"accel,omitempty"`
	AccelRequested string   `json:"accel_requested,omitempty"`
	// Platform is a sandbox's platform (LabelPlatform).
	Platform string `json:"platform,omitempty"`
	// Storage is what served the instances' own files (LabelStorage).
	Storage string `json:"storage,omitempty"`
	// Handler is the CRI runtime handler a Kubernetes RuntimeClass names
	// this kind of isolation by (drivers.Info.Handler); "" for none.
	Handler string `json:"handler,omitempty"`
}

// Observe adds what one instance's labels say to the role, as v declares
// them.
func (r *Role) Observe(v Vocabulary, instance map[string]string) {
	for k, val := range instance {
		l, ok := v.Label(k)
		if !ok {
			continue
		}
		switch l.Role {
		case LabelImage:
			r.FullOS = r.FullOS || slices.Contains(l.FullOS, val)
		case LabelAccel:
			if !slices.Contains(r.Accel, val) {
				r.Accel = append(r.Accel, val)
				sort.Strings(r.Accel)
			}
		case LabelAccelRequested:
			r.AccelRequested = val
		case LabelPlatform:
			r.Platform = val
		case LabelStorage:
			r.Storage = val
		}
	}
}

// Emulated reports whether every instance of the variant ran under TCG.
func (r Role) Emulated() bool { return slices.Equal(r.Accel, []string{AccelTCG}) }

// HardwareAssisted reports whether every instance ran under KVM.
func (r Role) HardwareAssisted() bool { return slices.Equal(r.Accel, []string{AccelKVM}) }
