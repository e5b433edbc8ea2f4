package analysis

import (
	"strings"
	"testing"

	"virtbench/internal/results"
)

// TestStorms reads start storms back: per variant and count, the p50 and
// p99 of every start against the start alone, and the storms' rate; the
// density claim and the classroom say how fast each kind starts.
func TestStorms(t *testing.T) {
	var samples []results.Sample
	storm := func(variant string, n int, starts []float64, rates ...float64) {
		for i, v := range starts {
			samples = append(samples, results.Sample{Variant: variant, Workload: "idle", Instances: n, Rep: i % len(rates), Metric: results.MetricStormStartup, Unit: "sec", Value: v})
		}
		for i, r := range rates {
			samples = append(samples,
				results.Sample{Variant: variant, Workload: "idle", Instances: n, Rep: i, Metric: results.MetricStormRate, Unit: "inst/s", Value: r},
				results.Sample{Variant: variant, Workload: "idle", Instances: n, Rep: i, Metric: results.MetricStormRatePerCore, Unit: "inst/s/core", Value: r / 2})
		}
	}
	storm("runc", 1, []float64{0.030, 0.032, 0.031}, 32, 31, 33)
	storm("runc", 4, []float64{0.030, 0.040, 0.050, 0.060, 0.031, 0.041, 0.051, 0.061, 0.032, 0.042, 0.052, 0.062}, 60, 62, 64)
	storm("qemu", 1, []float64{0.2, 0.21, 0.22}, 5, 4.8, 4.6)
	storm("qemu", 4, []float64{0.2, 0.4, 0.6, 0.8, 0.2, 0.4, 0.6, 0.8, 0.2, 0.4, 0.6, 0.81}, 5, 4.9, 5.1)
	roles := testRoles(map[string]results.Class{"runc": results.ClassOSLevel, "qemu": results.ClassVM}, nil)
	a := Analyze(testRun(samples, outcome(roles, nil)), nil)

	var got []string
	for _, s := range a.Storms() {
		got = append(got, s.Variant)
		if s.Variant == "runc" && s.Instances == 4 {
			if s.Starts != 12 || s.P50 != 0.046 || s.P99 < 0.061 || s.P99 > 0.062 || s.Alone != 0.031 || s.Rate != 62 || s.RatePerCore != 31 {
				t.Errorf("runc's storm of 4: %+v; want 12 starts, p50 46ms, p99 between 61 and 62ms, alone 31ms, rate 62, 31 per core", s)
			}
		}
	}
	if strings.Join(got, " ") != "runc runc qemu qemu" {
		t.Errorf("storms of %v, want runc's two then qemu's two", got)
	}
	var density Claim
	for _, c := range a.Claims {
		if c.Name == "density" {
			density = c
		}
	}
	if want := "in start storms, instances READY per second per host core: containers: runc 31 (storm of 4); VMs: qemu 2.5 (storm of 4)"; !strings.Contains(density.Evidence, want) {
		t.Errorf("density claim's evidence %q, want it to say %q", density.Evidence, want)
	}
	var figures []string
	for _, l := range a.Lessons {
		figures = append(figures, l.Figures...)
	}
	if want := "runc: 31 READY per second per core in a storm of 4 (p99 start 61.89ms)"; !strings.Contains(strings.Join(figures, "\n"), want) {
		t.Errorf("classroom figures %q, want %q", figures, want)
	}
}
