package analysis_test

import (
	"strings"
	"testing"

	"virtbench/analysis"
	"virtbench/analysis/analysistest"
	"virtbench/internal/results"
	"virtbench/internal/stats"
)

// TestFleet merges the runs of one scenario on hosts of two types, one
// under a cgroup's memory limit, beside a host that never answered and one
// whose run was cut short: every host has a row, the failed ones with the
// reason; each variant's capacity follows its host's budget; the fleet's
// totals add up the completed hosts only (the cut host's rows are shown
// and not counted) and name the cheapest host type per instance-hour.
func TestFleet(t *testing.T) {
	f, err := analysis.LoadFleet(analysistest.Fleet(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	failed := map[string]string{}
	for _, h := range f.Hosts {
		names = append(names, h.Name)
		failed[h.Name] = h.Failed
		if h.Run != nil && h.Run.Measurements != nil {
			t.Errorf("%s: the fleet keeps the host's measurements, want only its analysis", h.Name)
		}
	}
	if strings.Join(names, ",") != "big,cut,lost,never,small" {
		t.Fatalf("hosts %v, want big, cut, lost, never, small", names)
	}
	if failed["big"] != "" || failed["small"] != "" || !strings.Contains(failed["lost"], "unreachable") || !strings.Contains(failed["cut"], "killed") || !strings.Contains(failed["never"], "campaign ended before") {
		t.Errorf("failures %q: want lost unreachable and cut killed, the others none", failed)
	}
	fa := analysis.AnalyzeFleet(f, 1000)
	idle := map[string]int{}
	for _, r := range fa.Rows {
		idle[r.Variant+"@"+r.Host] = r.Capacity.Idle
		// The cut host's rows are shown, and count for nothing: its run
		// did not complete.
		if r.Counted != (r.Host != "cut") {
			t.Errorf("%s on %s: counted %v, want only completed hosts counted", r.Variant, r.Host, r.Counted)
		}
		// The memory column is the cost the capacity was made of.
		if r.Memory != r.Capacity.Limits[0].Cost {
			t.Errorf("%s on %s: memory %+v, capacity's memory cost %+v", r.Variant, r.Host, r.Memory, r.Capacity.Limits[0].Cost)
		}
	}
	// qemu is memory-bound in this run: 64 GiB hold more than 24, and an
	// 8 GiB cgroup fewer still.
	if !(idle["qemu@big"] > idle["qemu@cut"] && idle["qemu@cut"] > idle["qemu@small"] && idle["qemu@small"] > 0) {
		t.Errorf("qemu capacities %v: want big > cut (24 GiB) > small (8 GiB limit) > 0", idle)
	}
	var qemu *analysis.FleetTotal
	for i := range fa.Totals {
		if fa.Totals[i].Variant == "qemu" {
			qemu = &fa.Totals[i]
		}
	}
	if qemu == nil {
		t.Fatalf("totals %+v: no qemu row", fa.Totals)
	}
	if want := idle["qemu@big"] + idle["qemu@small"]; qemu.Idle != want {
		t.Errorf("qemu fleet total %d, want %d (big and small; cut failed)", qemu.Idle, want)
	}
	// 0.05 an hour for the small host's VMs against 0.8 for the big one's
	// (about 9 times as many).
	if want := 0.05 / float64(idle["qemu@small"]); qemu.Cheapest != "2c8g" || qemu.Cost != want {
		t.Errorf("qemu cheapest %q at %v, want 2c8g at %v", qemu.Cheapest, qemu.Cost, want)
	}
	// The host types per core, by their calibration; the cut host
	// recorded none (an older virtbench) and counts for nothing.
	if len(fa.Speeds) != 2 || fa.Speeds[0].HostType != "2c8g" || fa.Speeds[1].HostType != "16c64g" || fa.Speeds[1].VsSlowest != 1.4 {
		t.Errorf("speeds %+v, want 16c64g 1.4× 2c8g", fa.Speeds)
	}
	// 1000 VMs: ceil(1000/24) = 42 small hosts at 0.05 (2.10 an hour)
	// against ceil(1000/210) = 5 big ones at 0.8 (4.00).
	if p := qemu.For; p == nil || p.HostType != "2c8g" || p.Hosts != (1000+idle["qemu@small"]-1)/idle["qemu@small"] || p.CostPerHour != float64(p.Hosts)*0.05 {
		t.Errorf("qemu for 1000 instances: %+v, want the small hosts, as many as hold 1000", p)
	}
}

// TestFleetHostile: what compromised or broken hosts send back cannot
// reach beyond their directories: a record linked to a file of the
// controller is not read (the host fails, and nothing of the file shows),
// a host directory that is a link or whose name is not a host's is left
// out with a warning, as is a host named "../escape" in campaign.json.
func TestFleetHostile(t *testing.T) {
	f, err := analysis.LoadFleet(analysistest.HostileFleet(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range f.Hosts {
		names = append(names, h.Name)
		if h.Name == "linked" && (!strings.Contains(h.Failed, "symbolic link") || strings.Contains(h.Failed, "SECRET")) {
			t.Errorf("linked: failed %q, want its env.json refused as a link, nothing of the file quoted", h.Failed)
		}
	}
	if strings.Join(names, ",") != "linked,loud" {
		t.Errorf("hosts %q, want linked and loud only", names)
	}
	if w := strings.Join(f.Warnings, "\n"); !strings.Contains(w, `"../escape"`) || !strings.Contains(w, `evil\x1b]0;pwned\a`) {
		t.Errorf("warnings %q: want the bad host names named", f.Warnings)
	}
}

// TestFleetImpossibleFigures: hosts claiming a PSS far below a page cannot
// overflow the capacity model or the fleet's totals (the repro: capacity
// -9223372036854775808, a total of -4.05e18, "0 × t0 at 0 per hour").
func TestFleetImpossibleFigures(t *testing.T) {
	var v results.Vocabulary
	if err := results.ReadJSON(analysistest.QuickDir(), results.StatusFile, &struct {
		Vocabulary *results.Vocabulary `json:"vocabulary"`
	}{&v}); err != nil {
		t.Fatal(err)
	}
	tiny := stats.Summary{N: 5, Median: 0.05, CILo: 0.01, CIHi: 0.1, Min: 0.01, Max: 0.1}
	sums := []results.Summary{
		{Key: results.Key{Variant: "container", Workload: "idle", Instances: 1, Metric: results.MetricPSS}, Unit: "B", Summary: tiny},
		{Key: results.Key{Variant: "container", Workload: "idle", Instances: 2, Metric: results.MetricHostMemDrop}, Unit: "B", Summary: tiny},
	}
	x := analysis.NewIndex(sums, v)
	var hosts []analysis.FleetHost
	for _, n := range []string{"t0", "t1"} {
		caps := analysis.EstimateCapacity(x, []analysis.HostSize{{Name: analysis.ThisHost, Ran: true, MemoryBytes: 1 << 62, CPUs: 1}})
		for _, c := range caps {
			if c.Idle < 0 || c.Idle > analysis.MaxCount || c.IdleLo < 0 || c.IdleHi < 0 {
				t.Fatalf("capacity %+v: want a count within 0 and %d", c, analysis.MaxCount)
			}
		}
		hosts = append(hosts, analysis.FleetHost{Name: n, Record: analysis.HostRecord{Type: n, PricePerHour: 1}, Run: &analysis.Run{}, Analysis: &analysis.Analysis{Index: x, Capacity: caps}})
	}
	fa := analysis.AnalyzeFleet(&analysis.Fleet{Hosts: hosts}, 1000)
	if len(fa.Totals) != 1 {
		t.Fatalf("totals %+v, want one", fa.Totals)
	}
	tot := fa.Totals[0]
	if tot.Idle <= 0 || tot.Idle > analysis.MaxCount || tot.For == nil || tot.For.Hosts != 1 || tot.For.CostPerHour != 1 {
		t.Errorf("total %+v (plan %+v): want a positive count within MaxCount, and one host for 1000", tot, tot.For)
	}
}

// TestJudgeHost: a host is quiet unless the hypervisor stole CPU time,
// other tasks were runnable when the run began, or its probes drifted
// between the run's start and end beyond their noise; a run without a
// calibration is unknown, not quiet and not noisy.
func TestJudgeHost(t *testing.T) {
	cal := func(edit func(*results.Calibration)) results.Provenance {
		c := analysistest.Calibration(2000)
		edit(c)
		return results.Provenance{Cores: 2, Calibration: c}
	}
	for _, tt := range []struct {
		name string
		p    results.Provenance
		want string // "" for quiet
	}{
		{"quiet", cal(func(*results.Calibration) {}), ""},
		{"steal", cal(func(c *results.Calibration) { c.StealPercent = 7 }), "7.0% of the CPU time was stolen"},
		{"busy at the start", cal(func(c *results.Calibration) { c.Start.OthersRunnable = 1 }), "tasks besides virtbench runnable when the run began: 1, on 2 cores"},
		{"slower at the end", cal(func(c *results.Calibration) { c.End.CPUOpsPerSec = 1500 }), "the CPU probe ran 25% slower at the end than at the start"},
		{"within its noise", cal(func(c *results.Calibration) { c.End.CPUOpsPerSec, c.End.CPUNoise = 1800, 0.05 }), ""},
	} {
		h := analysis.JudgeHost(tt.p)
		if !h.Known || h.Quiet != (tt.want == "") || tt.want != "" && !strings.Contains(strings.Join(h.Reasons, "; "), tt.want) {
			t.Errorf("%s: %+v, want %q", tt.name, h, tt.want)
		}
	}
	if h := analysis.JudgeHost(results.Provenance{Cores: 2}); h.Known || h.Quiet {
		t.Errorf("no calibration: %+v, want unknown", h)
	}
}
