package reports

import (
	"fmt"
	"math"

	"virtbench/bench"
)

// Verdicts of a claim.
const (
	Holds       = "holds"
	DoesNotHold = "does not hold"
	NotMeasured = "not measured in this run"
)

// Claim is one of the claims the container-vs-VM literature repeats, with
// this run's evidence.
type Claim struct {
	Name     string `json:"name"`
	Claim    string `json:"claim"`
	Evidence string `json:"evidence"`
	// Ratio is VM over container (or container over VM for capacity),
	// oriented so that a large value supports the claim; 0 when not measured.
	Ratio   float64 `json:"ratio"`
	Verdict string  `json:"verdict"`
	Caveat  string  `json:"caveat"`
}

// containerDrivers and vmDrivers are the drivers that stand for each side,
// in order of preference.
var (
	containerDrivers = []string{"container", "runc", "crun", "docker"}
	vmDrivers        = []string{"qemu"}
)

// claimRatio is the factor between the two sides at which a claim of the
// form "much faster / much smaller / many more" is taken to hold.
const claimRatio = 10

// find returns the first summary of the preferred drivers matching metric
// (and workload, when not empty), single-instance trials first.
func find(sums []bench.Summary, prefer []string, metric, workload string) (bench.Summary, bool) {
	for _, d := range prefer {
		for _, s := range sums {
			if s.Driver == d && s.Metric == metric && s.N > 0 && (workload == "" || s.Workload == workload) && s.Instances == 1 {
				return s, true
			}
		}
		for _, s := range sums {
			if s.Driver == d && s.Metric == metric && s.N > 0 && (workload == "" || s.Workload == workload) {
				return s, true
			}
		}
	}
	return bench.Summary{}, false
}

// sides returns the container and the VM summaries of metric (any workload).
func sides(sums []bench.Summary, metric string) (ct, vm bench.Summary, ok bool) {
	ct, ok1 := find(sums, containerDrivers, metric, "")
	vm, ok2 := find(sums, vmDrivers, metric, "")
	return ct, vm, ok1 && ok2
}

func vmCaveat(vm bench.Summary, base string) string {
	if vm.Labels["accel"] == "tcg" {
		return base + " The VM ran under TCG, full software emulation: hardware-assisted (KVM) VMs are faster."
	}
	return base
}

// Claims evaluates the four claims on a run's summaries. hostMemBytes is
// the host's memory, for the density estimate.
func Claims(sums []bench.Summary, hostMemBytes int64) []Claim {
	return []Claim{startupClaim(sums), diskClaim(sums), perfClaim(sums), densityClaim(sums, hostMemBytes)}
}

func notMeasured(c Claim, what string) Claim {
	c.Verdict, c.Evidence = NotMeasured, what
	return c
}

func verdict(ratio float64) string {
	if ratio >= claimRatio {
		return Holds
	}
	return DoesNotHold
}

func startupClaim(sums []bench.Summary) Claim {
	c := Claim{Name: "startup", Claim: "Containers start in seconds, VMs in minutes."}
	ct, vm, ok := sides(sums, bench.MetricStartup)
	if !ok {
		return notMeasured(c, "needs startup of a container driver and of qemu")
	}
	c.Ratio = vm.Median / ct.Median
	c.Verdict = verdict(c.Ratio)
	c.Evidence = fmt.Sprintf("%s %s vs %s %s: the VM takes %.0f× as long", ct.Driver, FormatValue(ct.Median, "sec"), vm.Driver, FormatValue(vm.Median, "sec"), c.Ratio)
	c.Caveat = vmCaveat(vm, fmt.Sprintf("Judged on the ratio (≥ %d× holds). The magnitudes differ from the slogan: a minimal guest boots in seconds and a container starts in milliseconds.", claimRatio))
	return c
}

func diskClaim(sums []bench.Summary) Claim {
	c := Claim{Name: "disk", Claim: "Container images take megabytes, VM images gigabytes."}
	ct, vm, ok := sides(sums, bench.MetricImageAllocated)
	if !ok {
		return notMeasured(c, "needs the image footprint of a container driver and of qemu")
	}
	c.Ratio = vm.Median / ct.Median
	c.Verdict = verdict(c.Ratio)
	c.Evidence = fmt.Sprintf("%s %s vs %s %s allocated on disk (%.0f×)", ct.Driver, FormatValue(ct.Median, "B"), vm.Driver, FormatValue(vm.Median, "B"), c.Ratio)
	c.Caveat = "Both images are minimal (a static agent; a kernel, initramfs and sparse disk): a full distribution image is larger on both sides."
	return c
}

func perfClaim(sums []bench.Summary) Claim {
	c := Claim{Name: "performance", Claim: "Containers run at near-native speed, VMs slower."}
	nat, ok0 := find(sums, []string{"native"}, "cpu.sha256", "")
	ct, ok1 := find(sums, containerDrivers, "cpu.sha256", "")
	vm, ok2 := find(sums, vmDrivers, "cpu.sha256", "")
	if !ok0 || !ok1 || !ok2 {
		return notMeasured(c, "needs the cpu workload under native, a container driver and qemu")
	}
	rc, rv := ct.Median/nat.Median, vm.Median/nat.Median
	c.Ratio = rc / rv
	if math.Abs(rc-1) <= 0.05 && rv < 0.95 {
		c.Verdict = Holds
	} else {
		c.Verdict = DoesNotHold
	}
	c.Evidence = fmt.Sprintf("cpu throughput relative to native: %s %.2f, %s %.2f", ct.Driver, rc, vm.Driver, rv)
	c.Caveat = vmCaveat(vm, "Judged on a CPU-bound workload (container within 5% of native, VM more than 5% below).")
	return c
}

func densityClaim(sums []bench.Summary, hostMem int64) Claim {
	c := Claim{Name: "density", Claim: "A host runs thousands of containers but tens of VMs."}
	if ct, vm, ok := sides(sums, bench.MetricDensityReached); ok && ct.Max > 0 && vm.Max > 0 {
		// Measured: how many instances density sweeps started and kept.
		c.Ratio = ct.Max / vm.Max
		c.Verdict = verdict(c.Ratio)
		c.Evidence = fmt.Sprintf("density sweeps on this host ran %.0f idle %s instances and %.0f %s VMs at once", ct.Max, ct.Driver, vm.Max, vm.Driver)
		c.Caveat = vmCaveat(vm, "Measured; each sweep stopped at its own limit (a count, the memory floor, a failed start or the start-latency limit: see the density sweeps).")
		return c
	}
	ct, ok1 := find(sums, containerDrivers, bench.MetricPSS, "idle")
	vm, ok2 := find(sums, vmDrivers, bench.MetricPSS, "idle")
	if !ok1 || !ok2 || hostMem <= 0 || ct.Median <= 0 || vm.Median <= 0 {
		return notMeasured(c, "needs the memory (PSS) of idle instances of a container driver and of qemu")
	}
	usable := 0.8 * float64(hostMem)
	nc, nv := math.Floor(usable/ct.Median), math.Floor(usable/vm.Median)
	c.Ratio = nc / nv
	c.Verdict = verdict(c.Ratio)
	c.Evidence = fmt.Sprintf("by memory alone, 80%% of this host's %s holds about %.0f idle %s instances (%s PSS each) but %.0f %s VMs (%s each)",
		FormatValue(float64(hostMem), "B"), nc, ct.Driver, FormatValue(ct.Median, "B"), nv, vm.Driver, FormatValue(vm.Median, "B"))
	c.Caveat = "An estimate from per-instance PSS of idle instances: busy workloads need more memory and CPU; run the density scenario to measure it."
	return c
}
