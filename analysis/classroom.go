package analysis

import (
	"fmt"
	"strings"

	"virtbench/internal/results"
	"virtbench/internal/units"
)

// The kinds of virtualization the classroom section explains, in the order
// it explains them.
const (
	KindNone        = "no virtualization"
	KindApplication = "application virtualization"
	KindOSLevel     = "OS-level"
	KindSandbox     = "sandboxed kernel"
	KindEmulation   = "full emulation"
	KindHWAssisted  = "hardware-assisted"
)

// lessonKinds are the kinds in order, with what isolates the workload and
// what that costs, and the layers between the workload and the hardware
// (the isolating layer marked).
var lessonKinds = []struct {
	kind, text string
	layers     []Layer
}{
	{KindNone, "The workload is a plain process on the host's kernel: nothing isolates it beyond users and permissions. Every other figure is compared with it.",
		[]Layer{{"workload (virtbench-guest)", false}, {"host Linux kernel", false}, {"CPU, memory, disk, NIC", false}}},
	{KindApplication, "Wine runs a program built for Windows (the agent's Windows twin, in C) on Linux: the Win32 and NT calls it makes are translated into Linux calls by Wine's DLLs and, for what the NT kernel would do, by a round trip to the wineserver. Nothing isolates the program beyond a plain process; the cost is per call, where the translation reaches the wineserver, and at the start: the first program of a Wine session also starts the wineserver and Wine's Windows services (here every trial's only instance is such a first program).",
		[]Layer{{"program (virtbench-guest.exe)", false}, {"Wine: Win32 → Linux calls (ntdll, wineserver)", false}, {"host Linux kernel", false}, {"CPU, memory, disk, NIC", false}}},
	{KindOSLevel, "The host's own kernel isolates the workload with namespaces (what it can see: processes, mounts, network, host name) and limits it with cgroups (what it may use). No second kernel boots: a start is a few process creations, a system call costs what it costs natively, and the whole host kernel is the attack surface.",
		[]Layer{{"workload (virtbench-guest)", false}, {"namespaces + cgroups", true}, {"host Linux kernel", false}, {"CPU, memory, disk, NIC", false}}},
	{KindSandbox, "gVisor's Sentry, a kernel written in Go that runs as an ordinary host process, serves the workload's system calls; the host kernel sees only the Sentry's own, narrower set of calls. Every system call is intercepted (through ptrace, or KVM where usable), which is what this isolation costs per call, while start and memory stay near a container's.",
		[]Layer{{"workload (virtbench-guest)", false}, {"Sentry: Linux in user space (gVisor)", true}, {"host Linux kernel (ptrace or KVM platform)", false}, {"CPU, memory, disk, NIC", false}}},
	{KindEmulation, "QEMU's TCG translates every guest instruction into host code, so a whole machine with its own kernel runs on any CPU. The workload is isolated by a separate kernel behind emulated hardware; the price is a kernel boot at every start, the memory of a second kernel and the VMM, and CPU-bound work many times slower than native.",
		[]Layer{{"workload (virtbench-guest)", false}, {"guest Linux kernel", false}, {"QEMU: TCG translation + device models", true}, {"host Linux kernel", false}, {"CPU, memory, disk, NIC", false}}},
	{KindHWAssisted, "The CPU's virtualization extensions (VT-x, AMD-V) run guest instructions directly; KVM in the host kernel handles the exits and QEMU models the devices. The guest keeps a kernel of its own, as under emulation, but computes at nearly native speed; a start is still a kernel boot.",
		[]Layer{{"workload (virtbench-guest)", false}, {"guest Linux kernel", false}, {"QEMU: device models (virtio)", false}, {"KVM + VT-x/AMD-V", true}, {"CPU, memory, disk, NIC", false}}},
}

// devicesNote explains a device comparison in which no result differs
// beyond chance under TCG, or returns "".
func devicesNote(cs []Comparison, roles map[string]results.Role) string {
	n := 0
	for _, c := range cs {
		if !c.Devices {
			continue
		}
		n++
		if c.P < Alpha || !roles[c.Technique].Emulated() {
			return ""
		}
	}
	if n == 0 {
		return ""
	}
	return "In this run no result differs beyond chance (p ≥ 0.05 on each): under TCG every guest instruction is already emulated, so a register access that traps into a device model costs little more than any other instruction. Virtio's advantage, far fewer traps, shows where a trap is expensive: under hardware-assisted KVM, where each one is a VM exit and a world switch."
}

// Lesson is the classroom section's account of one kind of virtualization
// in a run.
type Lesson struct {
	// Virtualization is the kind of virtualization (KindNone, …).
	Virtualization string `json:"virtualization"`
	// Text says what isolates the workload and what that costs.
	Text string `json:"text"`
	// Figures give this run's numbers, one line per variant of the kind.
	Figures []string `json:"figures"`
	// Layers are what lies between the workload (first) and the
	// hardware (last).
	Layers []Layer `json:"layers"`
}

// Layer is one layer between a workload and the hardware; Isolates marks
// the layer that isolates the workload.
type Layer struct {
	Name     string `json:"name"`
	Isolates bool   `json:"isolates,omitempty"`
}

// kindOf returns the kind of virtualization a variant ran as: its class,
// with a VM split by the accelerator QEMU reported.
func kindOf(role results.Role) string {
	switch role.Class {
	case results.ClassNone:
		return KindNone
	case results.ClassApplication:
		return KindApplication
	case results.ClassOSLevel:
		return KindOSLevel
	case results.ClassSandbox:
		return KindSandbox
	case results.ClassVM:
		if role.HardwareAssisted() {
			return KindHWAssisted
		}
		return KindEmulation
	}
	return ""
}

// Classroom returns the lessons of a run that ran at least two kinds of
// virtualization, each with this run's figures.
func Classroom(r *Run, a *Analysis) []Lesson {
	byKind := map[string][]string{}
	names := a.Index.variantsOf(func(s results.Summary) bool {
		return s.Metric == results.MetricStartup || s.Metric == results.MetricStormStartup
	})
	var fallback []string // VMs that asked for KVM and ran under TCG
	for _, v := range names {
		role := a.Roles[v]
		k := kindOf(role)
		byKind[k] = append(byKind[k], v)
		if k == KindEmulation && role.AccelRequested != "" && role.AccelRequested != results.AccelTCG {
			fallback = append(fallback, v)
		}
	}
	kinds := 0
	for _, lk := range lessonKinds {
		if len(byKind[lk.kind]) > 0 {
			kinds++
		}
	}
	if kinds < 2 {
		return nil
	}
	var lessons []Lesson
	for _, lk := range lessonKinds {
		l := Lesson{Virtualization: lk.kind, Text: lk.text, Layers: lk.layers}
		for _, v := range byKind[lk.kind] {
			l.Figures = append(l.Figures, variantFigures(v, a))
		}
		if lk.kind == KindHWAssisted && len(l.Figures) == 0 {
			if len(fallback) == 0 {
				continue
			}
			l.Figures = append(l.Figures, fmt.Sprintf("Not measured on this host: %s asked for KVM where usable, and /dev/kvm here is %q, so QEMU ran under TCG; its figures are under full emulation above.",
				strings.Join(fallback, ", "), r.Provenance.KVM))
		}
		if lk.kind == KindApplication && len(l.Figures) > 0 {
			l.Figures = append(l.Figures, callCosts(a)...)
		}
		if lk.kind == KindOSLevel && len(l.Figures) > 0 {
			l.Figures = append(l.Figures, densityPairs(a.Claims)...)
		}
		if len(l.Figures) > 0 {
			lessons = append(lessons, l)
		}
	}
	return lessons
}

// variantFigures is one line of a variant's figures: start, memory and
// its speed relative to native.
func variantFigures(v string, a *Analysis) string {
	parts := []string{}
	if m := a.Index.Median(v, results.MetricStartup); m > 0 {
		p := "start " + units.Format(m, "sec")
		if n := a.Index.Median(a.Baseline, results.MetricStartup); n > 0 && v != a.Baseline {
			p += fmt.Sprintf(" (%.1f× %s)", m/n, a.Baseline)
		}
		parts = append(parts, p)
	}
	if m := a.Index.Median(v, results.MetricPSS); m > 0 {
		parts = append(parts, "PSS "+units.Format(m, "B"))
	}
	for _, s := range largestStorms(a.Storms()) {
		if s.Variant == v {
			parts = append(parts, fmt.Sprintf("%s READY per second per core in a storm of %d (p99 start %s)", units.Format(s.RatePerCore, ""), s.Instances, units.Format(s.P99, "sec")))
		}
	}
	for _, r := range a.Ratios {
		if r.Variant == v {
			parts = append(parts, fmt.Sprintf("%s %.2f× %s [%.2f-%.2f]", r.Metric, r.Value, a.Baseline, r.Lo, r.Hi))
		}
	}
	return v + ": " + strings.Join(parts, ", ")
}

// densityPairs sets the density claim's two pairs side by side, with why
// they differ, where both were judged.
func densityPairs(cs []Claim) []string {
	var minimal, full Claim
	for _, c := range cs {
		switch c.Name {
		case ClaimDensity:
			minimal = c
		case ClaimDensityFullOS:
			full = c
		}
	}
	if minimal.Container == "" || full.Container == "" {
		return nil
	}
	return []string{fmt.Sprintf("density, like for like: %s fits %.0f× [%.0f-%.0f] as many idle instances as %s (minimal: one process against a VM whose init is the agent); %s %.0f× [%.0f-%.0f] as many as %s (full OS: systemd booting in both). %s",
		minimal.Container, minimal.Ratio, minimal.Lo, minimal.Hi, minimal.VM, full.Container, full.Ratio, full.Lo, full.Hi, full.VM, fullOSLesson)}
}

// callCosts sets the cost of one system call (each metric of the system
// calls dimension, median of a single instance) of every variant side by
// side: what a translated or intercepted call costs against a native one.
func callCosts(a *Analysis) []string {
	var out []string
	for _, m := range a.Index.Vocabulary().MetricsOn(results.DimensionSyscall) {
		var parts []string
		for _, v := range a.Index.Started() {
			if s, ok := a.Index.Single(v, m); ok {
				parts = append(parts, v+" "+units.Format(s.Median, s.Unit))
			}
		}
		if len(parts) > 1 {
			out = append(out, fmt.Sprintf("one call (%s, median): %s", m, strings.Join(parts, ", ")))
		}
	}
	return out
}
