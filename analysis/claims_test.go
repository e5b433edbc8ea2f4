package analysis

import (
	"strings"
	"testing"

	"virtbench/internal/results"
)

var testClasses = map[string]results.Class{"native": results.ClassNone, "container": results.ClassOSLevel, "docker": results.ClassOSLevel, "qemu": results.ClassVM, "qemu-tcg": results.ClassVM}

// startup returns a startup summary of driver: median with its interval.
func startup(driver string, median, lo, hi float64, labels map[string]string) results.Summary {
	s := sum(driver, results.MetricStartup, "sec", median, lo, hi)
	s.Labels = labels
	return s
}

func TestStartupClaim(t *testing.T) {
	tcg := map[string]string{"accel": "tcg", "image": "minimal"}
	debian := map[string]string{"accel": "tcg", "image": "debian"}
	tests := []struct {
		name    string
		sums    []results.Summary
		verdict Verdict
		reason  string
		vm      string
	}{
		{"seconds vs seconds", []results.Summary{startup("container", 0.005, 0.0045, 0.0055, nil), startup("qemu", 1.7, 1.6, 1.8, tcg)},
			DirectionOnly, "the VM's start is 1.600s-1.800s, not minutes", "qemu"},
		{"seconds vs minutes", []results.Summary{startup("container", 2, 1.9, 2.1, nil), startup("qemu", 90, 80, 100, nil)},
			Holds, "both magnitudes hold", "qemu"},
		{"straddling a minute", []results.Summary{startup("container", 2, 1.9, 2.1, nil), startup("qemu", 61, 50, 70, nil)},
			DirectionOnly, "straddles 60.00s", "qemu"},
		{"inside the intervals", []results.Summary{startup("container", 1.0, 0.8, 1.3, nil), startup("qemu", 1.1, 0.9, 1.4, nil)},
			DoesNotHold, "no difference beyond the confidence intervals", "qemu"},
		{"VM faster", []results.Summary{startup("container", 3, 2.9, 3.1, nil), startup("qemu", 1, 0.9, 1.1, nil)},
			DoesNotHold, "the VM side is ahead", "qemu"},
		{"no VM", []results.Summary{startup("container", 0.005, 0.0045, 0.0055, nil)},
			NotMeasured, "needs startup", ""},
		{"the full-OS VM is judged", []results.Summary{startup("container", 0.005, 0.0045, 0.0055, nil), startup("qemu-tcg", 1.7, 1.6, 1.8, tcg), startup("qemu", 20, 19, 21, debian)},
			DirectionOnly, "the VM's start is 19.00s-21.00s", "qemu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startupClaim(claimContext{idx: idx(tt.sums), roles: sumRoles(testClasses, tt.sums)})
			if c.Verdict != tt.verdict || !strings.Contains(c.Reason, tt.reason) || c.VM != tt.vm {
				t.Errorf("verdict %q, reason %q, VM %q; want %q, %q, %q", c.Verdict, c.Reason, c.VM, tt.verdict, tt.reason, tt.vm)
			}
		})
	}
	// The other VM configuration is named in the evidence, with its guest.
	c := startupClaim(claimContext{idx: idx(tests[6].sums), roles: sumRoles(testClasses, tests[6].sums)})
	if !strings.Contains(c.Evidence, "qemu (full-OS guest) 20.00s") || !strings.Contains(c.Evidence, "also qemu-tcg (minimal guest) 1.700s") {
		t.Errorf("evidence %q does not contrast the full-OS and the minimal guest", c.Evidence)
	}
	if !strings.Contains(c.Caveat, "TCG") {
		t.Errorf("caveat %q does not say the VM ran under TCG", c.Caveat)
	}
}

func TestDiskClaim(t *testing.T) {
	img := func(driver string, v float64) results.Summary {
		return sum(driver, results.MetricImageAllocated, "B", v, v, v)
	}
	for _, tt := range []struct {
		vm      float64
		verdict Verdict
	}{{100e6, DirectionOnly}, {4e9, Holds}} {
		c := diskClaim(claimContext{idx: idx([]results.Summary{img("container", 3e6), img("qemu", tt.vm)}), roles: testRoles(testClasses, nil)})
		if c.Verdict != tt.verdict {
			t.Errorf("VM image %v B: verdict %q (%s), want %q", tt.vm, c.Verdict, c.Reason, tt.verdict)
		}
	}
	// Two VM variants: the full-OS one is judged, known by its startup's
	// labels (an image's size has none).
	classes := map[string]results.Class{"container": results.ClassOSLevel, "qemu": results.ClassVM, "qemu-debian": results.ClassVM}
	sums := []results.Summary{img("container", 3e6), img("qemu", 70e6), img("qemu-debian", 4e9),
		startup("qemu-debian", 14, 13, 15, map[string]string{"image": "debian"})}
	c := diskClaim(claimContext{idx: idx(sums), roles: sumRoles(classes, sums)})
	if c.VM != "qemu-debian" || c.Verdict != Holds || !strings.Contains(c.Evidence, "qemu-debian (full-OS guest)") || !strings.Contains(c.Evidence, "also qemu (minimal guest)") {
		t.Errorf("disk claim with two VM variants: %+v", c)
	}
}

func TestPerfClaim(t *testing.T) {
	near, slow := Ratio{Value: 0.99, Lo: 0.97, Hi: 1.01}, Ratio{Value: 0.03, Lo: 0.028, Hi: 0.032}
	type pair struct {
		metric string
		ct, vm Ratio
	}
	tests := []struct {
		name    string
		pairs   []pair
		verdict Verdict
		reasons []string
	}{
		{"near native vs slower", []pair{{"cpu.sha256", near, slow}}, Holds, []string{"both magnitudes hold", "(CPU)"}},
		{"container well below native", []pair{{"cpu.sha256", Ratio{Value: 0.8, Lo: 0.78, Hi: 0.82}, slow}}, DirectionOnly, []string{"the container is not near native on CPU (0.780-0.820 of native)"}},
		{"a VM as fast", []pair{{"cpu.sha256", near, Ratio{Value: 0.98, Lo: 0.96, Hi: 1.0}}}, DoesNotHold, []string{"not ahead of the VM beyond the 95% intervals on CPU"}},
		{"holds on CPU, not on disk", []pair{{"cpu.sha256", near, slow}, {"fileio.read", Ratio{Value: 1, Lo: 0.99, Hi: 1.01}, Ratio{Value: 0.97, Lo: 0.96, Hi: 0.975}}},
			DirectionOnly, []string{"it holds on CPU", "the VM is not clearly slower on disk bandwidth (0.960-0.975 of native)"}},
		{"disk first named after CPU", []pair{{"fileio.read", near, slow}, {"cpu.sha256", near, slow}}, Holds, []string{"(CPU, disk bandwidth)"}},
	}
	// The field's tool's rate is judged before the agent's own loop, and a
	// latency only where a dimension has no rate.
	tools := []Ratio{
		{Variant: "container", Workload: "fileio", Metric: "fileio.read", Value: 0.5, Lo: 0.4, Hi: 0.6}, {Variant: "qemu", Workload: "fileio", Metric: "fileio.read", Value: 0.1, Lo: 0.1, Hi: 0.1},
		{Variant: "container", Workload: "fio", Metric: "fio.randread_p50", Value: 0.5, Lo: 0.4, Hi: 0.6}, {Variant: "qemu", Workload: "fio", Metric: "fio.randread_p50", Value: 0.1, Lo: 0.1, Hi: 0.1},
		{Variant: "container", Workload: "fio", Metric: "fio.read_bw", Value: 0.99, Lo: 0.98, Hi: 1}, {Variant: "qemu", Workload: "fio", Metric: "fio.read_bw", Value: 0.1, Lo: 0.1, Hi: 0.1},
	}
	c := perfClaim(claimContext{idx: idx(nil), ratios: tools, roles: testRoles(testClasses, nil)})
	if len(c.Dimensions) != 2 || c.Dimensions[0].Metric != "fio.randread_p50" || c.Dimensions[1].Metric != "fio.read_bw" {
		t.Errorf("dimensions %+v, want disk IOPS on fio.randread_p50 (its only result) and disk bandwidth on fio.read_bw, not fileio.read", c.Dimensions)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ratios []Ratio
			for _, p := range tt.pairs {
				p.ct.Variant, p.ct.Metric = "container", p.metric
				p.vm.Variant, p.vm.Metric = "qemu", p.metric
				ratios = append(ratios, p.ct, p.vm)
			}
			c := perfClaim(claimContext{idx: idx(nil), ratios: ratios, roles: testRoles(testClasses, nil)})
			if c.Verdict != tt.verdict || len(c.Dimensions) != len(tt.pairs) {
				t.Errorf("verdict %q over %d dimensions (%s), want %q over %d", c.Verdict, len(c.Dimensions), c.Reason, tt.verdict, len(tt.pairs))
			}
			for _, r := range tt.reasons {
				if !strings.Contains(c.Reason, r) {
					t.Errorf("reason %q lacks %q", c.Reason, r)
				}
			}
		})
	}
	if c := perfClaim(claimContext{idx: idx(nil), roles: testRoles(testClasses, nil)}); c.Verdict != NotMeasured {
		t.Errorf("perf claim without ratios: %q", c.Verdict)
	}
}

func TestDensityClaim(t *testing.T) {
	capRow := func(driver string, idle, lo, hi int, binding string) Capacity {
		return Capacity{Host: ThisHost, Variant: driver, Idle: idle, IdleLo: lo, IdleHi: hi, Binding: binding}
	}
	tests := []struct {
		name    string
		caps    []Capacity
		verdict Verdict
		reason  string
	}{
		{"thousands vs tens", []Capacity{capRow("container", 12000, 11000, 13000, ResMemory), capRow("qemu", 16, 13, 20, ResCPU)}, Holds, "both magnitudes hold"},
		{"hundreds of VMs", []Capacity{capRow("container", 12000, 11000, 13000, ResMemory), capRow("qemu", 117, 110, 125, ResMemory)}, DirectionOnly, "117 VMs [110-125] are not tens"},
		{"hundreds of containers", []Capacity{capRow("container", 500, 450, 550, ResMemory), capRow("qemu", 16, 13, 20, ResCPU)}, DirectionOnly, "500 containers are not thousands"},
		{"no VM", []Capacity{capRow("container", 12000, 11000, 13000, ResMemory)}, NotMeasured, "needs the memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := densityClaim(claimContext{idx: idx(nil), caps: tt.caps, roles: testRoles(testClasses, nil)})
			if c.Verdict != tt.verdict || !strings.Contains(c.Reason, tt.reason) {
				t.Errorf("verdict %q (%s), want %q (%s)", c.Verdict, c.Reason, tt.verdict, tt.reason)
			}
		})
	}
}

// TestDensityClaimPairs: the density claim is judged on the minimal pair
// and, where a full OS ran, on the full-OS pair, each with its verdict;
// without a like pair, the minimal claim says its pair is unlike.
func TestDensityClaimPairs(t *testing.T) {
	capRow := func(variant string, idle int) Capacity {
		return Capacity{Host: ThisHost, Variant: variant, Idle: idle, IdleLo: idle, IdleHi: idle, Binding: ResMemory}
	}
	classes := map[string]results.Class{"lxc": results.ClassOSLevel, "lxc-debian": results.ClassOSLevel, "qemu": results.ClassVM, "qemu-debian": results.ClassVM}
	debian := map[string]string{"image": "debian"}
	roles := testRoles(classes, map[string]map[string]string{"lxc-debian": debian, "qemu-debian": debian, "lxc": {"image": "minimal"}, "qemu": {"image": "minimal"}})
	tests := []struct {
		name          string
		caps          []Capacity
		minimal, full [2]string // the pairs judged
		fullVerdict   Verdict
		unlike        bool
	}{
		{"both pairs", []Capacity{capRow("lxc-debian", 3259), capRow("lxc", 3667), capRow("qemu-debian", 2), capRow("qemu", 16)},
			[2]string{"lxc", "qemu"}, [2]string{"lxc-debian", "qemu-debian"}, DirectionOnly, false},
		{"no full-OS container", []Capacity{capRow("lxc", 3667), capRow("qemu-debian", 2), capRow("qemu", 16)},
			[2]string{"lxc", "qemu"}, [2]string{}, NotMeasured, false},
		{"only unlike", []Capacity{capRow("lxc", 3667), capRow("qemu-debian", 2)},
			[2]string{"lxc", "qemu-debian"}, [2]string{}, NotMeasured, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := claims(claimContext{idx: idx(nil), caps: tt.caps, roles: roles})
			var min, full *Claim
			for i := range cs {
				switch cs[i].Name {
				case "density":
					min = &cs[i]
				case "density_full_os":
					full = &cs[i]
				}
			}
			if min == nil || full == nil {
				t.Fatalf("claims %+v: want density and density_full_os", cs)
			}
			if got := [2]string{min.Container, min.VM}; got != tt.minimal {
				t.Errorf("minimal pair %v, want %v", got, tt.minimal)
			}
			if strings.Contains(min.Caveat, "no such pair") != tt.unlike {
				t.Errorf("minimal caveat %q: unlike pair said = %v, want %v", min.Caveat, !tt.unlike, tt.unlike)
			}
			if got := [2]string{full.Container, full.VM}; got != tt.full || full.Verdict != tt.fullVerdict {
				t.Errorf("full-OS pair %v %q (%s), want %v %q", got, full.Verdict, full.Reason, tt.full, tt.fullVerdict)
			}
			if !strings.Contains(full.Caveat, "Why the pairs differ") {
				t.Errorf("full-OS caveat %q lacks the lesson", full.Caveat)
			}
		})
	}
	minimal := map[string]results.Role{"lxc": roles["lxc"], "qemu": roles["qemu"]}
	if cs := claims(claimContext{idx: idx(nil), caps: []Capacity{capRow("lxc", 3667), capRow("qemu", 16)}, roles: minimal}); len(cs) != 4 {
		t.Errorf("a run without a full OS judged %d claims, want 4 (no full-OS pair)", len(cs))
	}
}

// TestDensityClaimAtLoad: where objective sweeps ran, the density claim is
// judged on the counts that met the objective as well.
func TestDensityClaimAtLoad(t *testing.T) {
	row := func(variant string, idle int, o *Objective) Capacity {
		return Capacity{Host: ThisHost, Variant: variant, Idle: idle, IdleLo: idle, IdleHi: idle, Binding: ResMemory, Objective: o}
	}
	roles := testRoles(testClasses, nil)
	caps := []Capacity{
		row("container", 4000, &Objective{Workload: "nginx", Instances: 1200, Lo: 1200, Hi: 1250, Binding: "latency", Offered: 50, SLOP99: 0.05}),
		row("qemu", 100, &Objective{Workload: "nginx", Instances: 12, Lo: 12, Hi: 13, Binding: "cpu", Offered: 50, SLOP99: 0.05}),
	}
	var at *Claim
	for _, c := range claims(claimContext{idx: idx(nil), caps: caps, roles: roles}) {
		if c.Name == ClaimDensityAtLoad {
			at = &c
		}
	}
	if at == nil || at.Verdict != Holds || at.Container != "container" || at.VM != "qemu" || at.Ratio != 100 {
		t.Fatalf("claim at load %+v: want it to hold, 1200 containers against 12 VMs", at)
	}
	if !strings.Contains(at.Evidence, "1200 loaded container instances fit [1200-1249]") || !strings.Contains(at.Evidence, "nginx at 50.00 op/s, p99 <= 50.00ms") {
		t.Errorf("evidence %q", at.Evidence)
	}
	caps[1].Objective = nil
	for _, c := range claims(claimContext{idx: idx(nil), caps: caps, roles: roles}) {
		if c.Name == ClaimDensityAtLoad && c.Verdict != NotMeasured {
			t.Errorf("claim at load without a VM's objective sweep: %q", c.Verdict)
		}
	}
}
