package analysis

import (
	"fmt"
	"slices"
	"strings"

	"virtbench/internal/results"
	"virtbench/internal/units"
)

// Verdict is what a claim's judgement found.
type Verdict string

// The verdicts.
const (
	Holds         Verdict = "holds"
	DirectionOnly Verdict = "holds in direction, not in magnitude"
	DoesNotHold   Verdict = "does not hold"
	NotMeasured   Verdict = "not measured"
)

// Claim is one of the claims the container-vs-VM literature repeats, judged
// on this run's evidence: on its direction (the container side better than
// the VM side beyond the confidence intervals) and on the magnitudes it
// states for each side.
type Claim struct {
	Name  string `json:"name"`
	Claim string `json:"claim"`
	// Verdict is Holds, DirectionOnly, DoesNotHold or NotMeasured.
	Verdict Verdict `json:"verdict"`
	// Evidence gives the figures of the pair judged (and of the other VM
	// configurations that ran); Reason says which part held or failed,
	// and by how much.
	Evidence string `json:"evidence"`
	Reason   string `json:"reason"`
	// Container and VM name the pair judged.
	Container string `json:"container,omitempty"`
	VM        string `json:"vm,omitempty"`
	// Ratio is the container side's advantage (VM over container for
	// costs, container over VM for capacity and speed): above 1 supports
	// the claim. Lo and Hi bound it from the confidence intervals.
	Ratio  float64 `json:"ratio"`
	Lo     float64 `json:"ratio_lo"`
	Hi     float64 `json:"ratio_hi"`
	Caveat string  `json:"caveat"`
	// Dimensions are the performance claim's verdicts per dimension, the
	// first of which gives Ratio.
	Dimensions []DimensionVerdict `json:"dimensions,omitempty"`
}

// claimContext is what the claims are judged on.
type claimContext struct {
	idx    *Index
	roles  map[string]results.Role
	ratios []Ratio
	caps   []Capacity // this host only
	storms []Storm
}

// candidates returns the summaries of metric of every variant of class,
// one per variant (single-instance trials first), in the order they
// appear.
func (c claimContext) candidates(class results.Class, metric string) []results.Summary {
	var out []results.Summary
	seen := map[string]bool{}
	for _, pass := range []bool{true, false} {
		for _, s := range c.idx.Metric(metric) {
			if seen[s.Variant] || c.roles[s.Variant].Class != class {
				continue
			}
			if pass && s.Instances != 1 {
				continue
			}
			seen[s.Variant] = true
			out = append(out, s)
		}
	}
	return out
}

// pickVM returns the VM side to judge a claim on: the full-OS guest where
// one ran, else the first VM; and a note on the other VM configurations.
func (c claimContext) pickVM(vms []results.Summary, format func(results.Summary) string) (results.Summary, string) {
	best := vms[0]
	for _, v := range vms {
		if c.roles[v.Variant].FullOS {
			best = v
			break
		}
	}
	var others []string
	for _, v := range vms {
		if v.Variant != best.Variant {
			others = append(others, c.vmName(v)+" "+format(v))
		}
	}
	if len(others) == 0 {
		return best, ""
	}
	return best, " (also " + strings.Join(others, ", ") + ")"
}

// vmName names a VM side with its guest: the minimal microVM or the full OS.
func (c claimContext) vmName(s results.Summary) string {
	if c.roles[s.Variant].FullOS {
		return s.Variant + " (full-OS guest)"
	}
	return s.Variant + " (minimal guest)"
}

// interval writes a summary's range (its confidence interval, or its
// values' range where it has too few for one), " [lo-hi]", where it has
// one.
func interval(s results.Summary, unit string) string {
	lo, hi := s.Range()
	if lo == hi {
		return ""
	}
	return fmt.Sprintf(" [%s-%s]", units.Format(lo, unit), units.Format(hi, unit))
}

// ratioText writes a ratio with its range where it has one.
func ratioText(c Claim) string {
	if c.Lo == c.Hi {
		return fmt.Sprintf("%.3g×", c.Ratio)
	}
	return fmt.Sprintf("%.3g× (%.3g-%.3g×)", c.Ratio, c.Lo, c.Hi)
}

// judge decides a claim from the range of its ratio (above 1 supports it)
// and from whether the stated magnitudes hold (magnitudeWhy says why not).
func judge(c Claim, magnitudeOK bool, magnitudeWhy string) Claim {
	switch {
	case c.Lo > 1 && magnitudeOK:
		c.Verdict = Holds
		c.Reason = fmt.Sprintf("the container side is ahead %s, beyond the 95%% intervals, and both magnitudes hold", ratioText(c))
	case c.Lo > 1:
		c.Verdict = DirectionOnly
		c.Reason = fmt.Sprintf("the container side is ahead %s, but %s", ratioText(c), magnitudeWhy)
	case c.Hi < 1:
		c.Verdict = DoesNotHold
		c.Reason = fmt.Sprintf("the VM side is ahead: ratio %.3g (%.3g-%.3g)", c.Ratio, c.Lo, c.Hi)
	default:
		c.Verdict = DoesNotHold
		c.Reason = fmt.Sprintf("no difference beyond the confidence intervals: ratio %.3g, range %.3g-%.3g includes 1", c.Ratio, c.Lo, c.Hi)
	}
	return c
}

func notMeasured(c Claim, what string) Claim {
	c.Verdict, c.Reason = NotMeasured, what
	return c
}

// vmCaveat adds to base that the VM ran under TCG, when any of its
// instances did.
func vmCaveat(vm results.Role, base string) string {
	if slices.Contains(vm.Accel, results.AccelTCG) {
		return base + " The VM ran under TCG, full software emulation: hardware-assisted (KVM) VMs start and run faster."
	}
	return base
}

// Magnitudes the claims state.
const (
	minuteSec = 60  // "VMs start in minutes"
	gigabyte  = 1e9 // "VM images take gigabytes"
	// nearNative is how close to native "near-native" speed is.
	nearNative = 0.05
	thousands  = 1000 // "thousands of containers"
	tensLo     = 10   // "tens of VMs": 10 to 99
	tensHi     = 100
)

// claims judges the claims on this run; the density claim's full-OS pair
// only where a full OS ran on one side at least, and at load only where
// an objective sweep ran.
func claims(c claimContext) []Claim {
	density := densityClaim(c)
	cs := []Claim{startupClaim(c), diskClaim(c), perfClaim(c), density}
	for _, r := range c.roles {
		if r.FullOS {
			cs = append(cs, fullOSDensityClaim(c, density))
			break
		}
	}
	for _, cp := range c.caps {
		if cp.Objective != nil {
			return append(cs, loadedDensityClaim(c))
		}
	}
	return cs
}

// costClaim judges a claim on a cost where lower is better (startup time,
// image size): the ratio is VM over container.
func costClaim(c claimContext, cl Claim, metric, unit string, ctOK, vmOK func(lo, hi float64) (bool, string)) Claim {
	cts, vms := c.candidates(results.ClassOSLevel, metric), c.candidates(results.ClassVM, metric)
	if len(cts) == 0 || len(vms) == 0 {
		return notMeasured(cl, fmt.Sprintf("needs %s of a container driver and of a VM driver", metric))
	}
	ct := cts[0]
	f := func(s results.Summary) string { return units.Format(s.Median, unit) }
	vm, others := c.pickVM(vms, f)
	cl.Container, cl.VM = ct.Variant, vm.Variant
	ctLo, ctHi := ct.Range()
	vmLo, vmHi := vm.Range()
	cl.Ratio, cl.Lo, cl.Hi = vm.Median/ct.Median, vmLo/ctHi, vmHi/ctLo
	cl.Evidence = fmt.Sprintf("%s %s%s vs %s %s%s%s", ct.Variant, f(ct), interval(ct, unit), c.vmName(vm), f(vm), interval(vm, unit), others)
	okC, whyC := ctOK(ctLo, ctHi)
	okV, whyV := vmOK(vmLo, vmHi)
	var why []string
	if !okC {
		why = append(why, whyC)
	}
	if !okV {
		why = append(why, whyV)
	}
	return judge(cl, okC && okV, strings.Join(why, " and "))
}

// within says whether [lo, hi] lies on the stated side of bound, and if
// not, how: entirely on the other side, or straddling it.
func within(lo, hi, bound float64, above bool, what, stated string, unit string) (bool, string) {
	if above && lo >= bound || !above && hi < bound {
		return true, ""
	}
	if above && hi < bound || !above && lo >= bound {
		v := units.Format(lo, unit)
		if hi != lo {
			v += "-" + units.Format(hi, unit)
		}
		return false, fmt.Sprintf("%s is %s, not %s", what, v, stated)
	}
	return false, fmt.Sprintf("%s (%s-%s) straddles %s, so %q is not established", what, units.Format(lo, unit), units.Format(hi, unit), units.Format(bound, unit), stated)
}

func startupClaim(c claimContext) Claim {
	cl := Claim{Name: "startup", Claim: "Containers start in seconds, VMs in minutes.",
		Caveat: "Judged on start to READY of an idle instance; magnitudes: a container within seconds (< 60 s), a VM in minutes (>= 60 s)."}
	cl = costClaim(c, cl, results.MetricStartup, "sec",
		func(lo, hi float64) (bool, string) {
			return within(lo, hi, minuteSec, false, "the container's start", "seconds", "sec")
		},
		func(lo, hi float64) (bool, string) {
			return within(lo, hi, minuteSec, true, "the VM's start", "minutes (>= 60 s)", "sec")
		})
	cl.Caveat = vmCaveat(c.roles[cl.VM], cl.Caveat)
	return cl
}

func diskClaim(c claimContext) Claim {
	cl := Claim{Name: "disk", Claim: "Container images take megabytes, VM images gigabytes.",
		Caveat: "Judged on the image allocated on disk, shared layers counted once; magnitudes: a container image below 1 GB, a VM image of 1 GB or more."}
	return costClaim(c, cl, results.MetricImageAllocated, "B",
		func(lo, hi float64) (bool, string) {
			return within(lo, hi, gigabyte, false, "the container image", "megabytes (< 1 GB)", "B")
		},
		func(lo, hi float64) (bool, string) {
			return within(lo, hi, gigabyte, true, "the VM image", "gigabytes (>= 1 GB)", "B")
		})
}

// ratioOf returns the first ratio to native of metric among drivers of class.
func (c claimContext) ratioOf(class results.Class, metric string) (Ratio, bool) {
	for _, r := range c.ratios {
		if r.Metric == metric && c.roles[r.Variant].Class == class {
			return r, true
		}
	}
	return Ratio{}, false
}

// PerfDimensions is the order in which the performance claim names the
// dimensions of performance.
var PerfDimensions = []results.Dimension{
	results.DimensionCPU, results.DimensionMemory, results.DimensionSyscall,
	results.DimensionDiskIOPS, results.DimensionDiskBW, results.DimensionNetwork, results.DimensionServer,
}

// DimensionVerdict is the performance claim on one dimension: the
// dimension's first result measured under native, a container and a VM,
// each side's ratio to native, and whether each side's magnitude holds.
type DimensionVerdict struct {
	Dimension results.Dimension `json:"dimension"`
	Metric    string            `json:"metric"`
	Container Ratio             `json:"container"`
	VM        Ratio             `json:"vm"`
	// NearNative: the container is within nearNative of native; Slower:
	// the VM is more than nearNative slower; Ahead: the container is
	// faster than the VM beyond the intervals.
	NearNative bool `json:"container_near_native"`
	Slower     bool `json:"vm_slower"`
	Ahead      bool `json:"container_ahead"`
}

// dimensionVerdicts judges each dimension the run measured under native, a
// container and a VM, in PerfDimensions' order, on the dimension's first
// rate (a result where higher is better: IOPS, not a latency) of the
// field's tools (results.Workload.Tools), else its first rate, else its
// first result (a time per operation).
func (c claimContext) dimensionVerdicts() []DimensionVerdict {
	tools := func(k results.MetricKind, w results.Workload) bool {
		return k.Better == results.HigherIsBetter && w.Tools
	}
	rate := func(k results.MetricKind, _ results.Workload) bool { return k.Better == results.HigherIsBetter }
	any := func(results.MetricKind, results.Workload) bool { return true }
	var out []DimensionVerdict
	for _, d := range PerfDimensions {
		for _, pass := range []func(results.MetricKind, results.Workload) bool{tools, rate, any} {
			if v, ok := c.dimensionVerdict(d, pass); ok {
				out = append(out, v)
				break
			}
		}
	}
	return out
}

// dimensionVerdict judges dimension d on its first result that take
// accepts, measured under a container and a VM.
func (c claimContext) dimensionVerdict(d results.Dimension, take func(results.MetricKind, results.Workload) bool) (DimensionVerdict, bool) {
	voc := c.idx.Vocabulary()
	for _, ct := range c.ratios {
		k := voc.Kind(ct.Metric)
		w, _ := voc.Workload(ct.Workload)
		if k.Dimension != d || !take(k, w) || c.roles[ct.Variant].Class != results.ClassOSLevel {
			continue
		}
		vm, ok := c.ratioOf(results.ClassVM, ct.Metric)
		if !ok {
			continue
		}
		return DimensionVerdict{
			Dimension: d, Metric: ct.Metric, Container: ct, VM: vm,
			NearNative: ct.Hi >= 1-nearNative && ct.Lo <= 1+nearNative,
			Slower:     vm.Hi < 1-nearNative,
			Ahead:      ct.Lo > vm.Hi,
		}, true
	}
	return DimensionVerdict{}, false
}

func perfClaim(c claimContext) Claim {
	cl := Claim{Name: "performance", Claim: "Containers run at near-native speed, VMs slower.",
		Caveat: fmt.Sprintf("Judged on each dimension of performance the run measured (CPU, memory bandwidth, system calls, disk IOPS, disk bandwidth, network, server requests), on the dimension's first rate measured under native, a container and a VM (the field's tools' where they ran: fio, iperf3, Redis), each side relative to native in the same run; magnitudes: the container within %.0f%% of native, the VM more than %.0f%% slower.", 100*nearNative, 100*nearNative)}
	dims := c.dimensionVerdicts()
	if len(dims) == 0 {
		return notMeasured(cl, "needs a workload measured under native, a container driver and a VM driver")
	}
	first := dims[0]
	cl.Container, cl.VM = first.Container.Variant, first.VM.Variant
	cl.Ratio, cl.Lo, cl.Hi = first.Container.Value/first.VM.Value, first.Container.Lo/first.VM.Hi, first.Container.Hi/first.VM.Lo
	cl.Dimensions = dims
	var evidence, behind, notNear, notSlower, holds []string
	for _, d := range dims {
		ct, vm := d.Container, d.VM
		evidence = append(evidence, fmt.Sprintf("%s (%s): %s %.3f [%.3f-%.3f], %s %.3f [%.3f-%.3f]", d.Dimension, d.Metric, ct.Variant, ct.Value, ct.Lo, ct.Hi, vm.Variant, vm.Value, vm.Lo, vm.Hi))
		switch {
		case !d.Ahead:
			behind = append(behind, fmt.Sprintf("%s (container %.3f-%.3f, VM %.3f-%.3f of native)", d.Dimension, ct.Lo, ct.Hi, vm.Lo, vm.Hi))
		case d.NearNative && d.Slower:
			holds = append(holds, string(d.Dimension))
		}
		if d.Ahead && !d.NearNative {
			notNear = append(notNear, fmt.Sprintf("%s (%.3f-%.3f of native)", d.Dimension, ct.Lo, ct.Hi))
		}
		if d.Ahead && !d.Slower {
			notSlower = append(notSlower, fmt.Sprintf("%s (%.3f-%.3f of native)", d.Dimension, vm.Lo, vm.Hi))
		}
	}
	cl.Evidence = "relative to native: " + strings.Join(evidence, "; ")
	var why []string
	if len(holds) > 0 {
		why = append(why, "it holds on "+strings.Join(holds, ", "))
	}
	if len(notNear) > 0 {
		why = append(why, "the container is not near native on "+strings.Join(notNear, ", "))
	}
	if len(notSlower) > 0 {
		why = append(why, "the VM is not clearly slower on "+strings.Join(notSlower, ", "))
	}
	switch {
	case len(behind) > 0:
		cl.Verdict = DoesNotHold
		cl.Reason = "the container side is not ahead of the VM beyond the 95% intervals on " + strings.Join(behind, ", ")
		if len(why) > 0 {
			cl.Reason += "; " + strings.Join(why, "; ")
		}
	case len(notNear)+len(notSlower) > 0:
		cl.Verdict = DirectionOnly
		cl.Reason = "the container side is ahead on every dimension measured, but " + strings.Join(why, "; ")
	default:
		cl.Verdict = Holds
		cl.Reason = "the container side is ahead on every dimension measured (" + strings.Join(holds, ", ") + "), beyond the 95% intervals, and both magnitudes hold"
	}
	cl.Caveat = vmCaveat(c.roles[cl.VM], cl.Caveat)
	return cl
}

// The density claim's names: judged on the minimal pair, and on the
// full-OS pair.
const (
	ClaimDensity       = "density"
	ClaimDensityFullOS = "density_full_os"
	ClaimDensityAtLoad = "density_at_load"
)

// densityClaim judges the density claim on the minimal pair: a
// one-process container against a VM whose init is the agent. Where the
// run has no such pair it falls back to the containers and VMs it has,
// and the caveat says the pair is unlike.
func densityClaim(c claimContext) Claim {
	cl := Claim{Name: ClaimDensity, Claim: "A host runs thousands of containers but tens of VMs.",
		Caveat: "Judged on the capacity model (the same as the capacity table) for idle instances on this host, a minimal container (one process) against a minimal VM (the agent is its init); magnitudes: a container count of 1000 or more, a VM count of 10 to 99."}
	ct, vm := c.capacityOf(results.ClassOSLevel, false), c.capacityOf(results.ClassVM, false)
	if ct == nil || vm == nil {
		ct, vm = c.capacityOf(results.ClassOSLevel, ct == nil), c.capacityOf(results.ClassVM, vm == nil)
		if ct != nil && vm != nil {
			cl.Caveat += " This run has no such pair: a full OS stands on one side only, which favours the other."
		}
	}
	cl = densityPair(c, cl, ct, vm, "idle")
	if vm != nil {
		cl.Caveat = vmCaveat(c.roles[vm.Variant], cl.Caveat)
	}
	return cl
}

// fullOSDensityClaim judges the density claim on the full-OS pair: a
// system container booting Debian's systemd (lxc image=debian) against a
// VM booting the same (qemu image=debian). The caveat says why its ratio
// differs from the minimal pair's.
func fullOSDensityClaim(c claimContext, minimal Claim) Claim {
	cl := Claim{Name: ClaimDensityFullOS, Claim: "A host runs thousands of containers but tens of VMs: full OS against full OS.",
		Caveat: "Judged as the density claim, on the full-OS pair: a system container booting Debian's systemd against a VM booting the same Debian. " + fullOSLesson}
	ct, vm := c.capacityOf(results.ClassOSLevel, true), c.capacityOf(results.ClassVM, true)
	if ct == nil || vm == nil {
		return notMeasured(cl, "needs idle instances of a full-OS container and of a full-OS VM (lxc and qemu with image: debian)")
	}
	cl = densityPair(c, cl, ct, vm, "idle")
	if minimal.Verdict != NotMeasured && minimal.Container != ct.Variant {
		cl.Caveat += fmt.Sprintf(" Here the full-OS pair's ratio is %.0f× [%.0f-%.0f], the minimal pair's %.0f× [%.0f-%.0f].", cl.Ratio, cl.Lo, cl.Hi, minimal.Ratio, minimal.Lo, minimal.Hi)
	}
	return cl
}

// fullOSLesson says why the density claim's two pairs differ.
const fullOSLesson = "Why the pairs differ: a full OS brings its own services (systemd, journald, udev, a getty) to both sides, so the full-OS container costs far more than a one-process one, while the VM's cost was already dominated by its second kernel, its VMM and the guest RAM it touched. The minimal pair sets the least a container holds against the least a VM holds; the full-OS pair sets like against like, what a host running whole systems chooses between."

// loadedDensityClaim judges the density claim at load: on the counts of
// instances that met the load profile's objective, all loaded at once
// (objective sweeps), of the first container and the first VM that ran
// one.
func loadedDensityClaim(c claimContext) Claim {
	cl := Claim{Name: ClaimDensityAtLoad, Claim: "A host runs thousands of containers but tens of VMs: each serving its load within the objective.",
		Caveat: "Judged as the density claim, on the capacity at the load objective (objective sweeps: every instance sent the load profile at once, each window within the objective) instead of idle instances."}
	loaded := func(class results.Class) (*Capacity, string) {
		for _, cp := range c.caps {
			if o := cp.Objective; o != nil && c.roles[cp.Variant].Class == class {
				return &Capacity{Variant: cp.Variant, Idle: o.Instances, IdleLo: o.Lo, IdleHi: max(o.Lo, o.Hi-1), Binding: o.Binding},
					fmt.Sprintf("each sent %s at %s, p99 <= %s", o.Workload, units.Format(o.Offered, "op/s"), units.Format(o.SLOP99, "sec"))
			}
		}
		return nil, ""
	}
	ct, how := loaded(results.ClassOSLevel)
	vm, _ := loaded(results.ClassVM)
	if ct == nil || vm == nil {
		return notMeasured(cl, "needs objective sweeps of a container driver and of a VM driver")
	}
	cl = densityPair(c, cl, ct, vm, "loaded")
	cl.Evidence += "; " + how
	return cl
}

// capacityOf returns the first capacity on this host of a variant of
// class whose instances run a full OS, or not: nil where there is none.
func (c claimContext) capacityOf(class results.Class, fullOS bool) *Capacity {
	for i, cp := range c.caps {
		if r := c.roles[cp.Variant]; r.Class == class && r.FullOS == fullOS {
			return &c.caps[i]
		}
	}
	return nil
}

// densityPair judges cl, the density claim, on the capacities of ct, a
// container, and vm, a VM, of instances as how says ("idle").
func densityPair(c claimContext, cl Claim, ct, vm *Capacity, how string) Claim {
	storms := stormSentence(c.storms, c.roles)
	if ct == nil || vm == nil {
		cl.Evidence = storms
		return notMeasured(cl, "needs the memory of idle instances of a container driver and of a VM driver")
	}
	cl.Container, cl.VM = ct.Variant, vm.Variant
	cl.Ratio = float64(ct.Idle) / float64(max(vm.Idle, 1))
	cl.Lo, cl.Hi = float64(ct.IdleLo)/float64(max(vm.IdleHi, 1)), float64(ct.IdleHi)/float64(max(vm.IdleLo, 1))
	cl.Evidence = fmt.Sprintf("on this host %d %s %s instances fit [%d-%d] (%s binds) and %d %s VMs [%d-%d] (%s binds)",
		ct.Idle, how, ct.Variant, ct.IdleLo, ct.IdleHi, ct.Binding, vm.Idle, vm.Variant, vm.IdleLo, vm.IdleHi, vm.Binding)
	if sw := c.sweeps(); sw != "" {
		cl.Evidence += "; density sweeps ran " + sw
	}
	if storms != "" {
		cl.Evidence += "; " + storms
	}
	var why []string
	if ct.IdleHi < thousands {
		why = append(why, fmt.Sprintf("%d containers are not thousands", ct.Idle))
	} else if ct.IdleLo < thousands {
		why = append(why, fmt.Sprintf("the container count's range (%d-%d) straddles 1000", ct.IdleLo, ct.IdleHi))
	}
	if vm.IdleLo < tensLo || vm.IdleHi >= tensHi {
		why = append(why, fmt.Sprintf("%d VMs [%d-%d] are not tens (10-99)", vm.Idle, vm.IdleLo, vm.IdleHi))
	}
	return judge(cl, len(why) == 0, strings.Join(why, " and "))
}

// sweeps lists how many instances each density sweep held.
func (c claimContext) sweeps() string {
	var parts []string
	for _, s := range c.idx.Metric(results.MetricDensityReached) {
		parts = append(parts, fmt.Sprintf("%.0f %s", s.Max, s.Variant))
	}
	return strings.Join(parts, ", ")
}
