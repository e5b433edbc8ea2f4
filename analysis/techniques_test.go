package analysis

import (
	"strings"
	"testing"

	"virtbench/internal/results"
)

// TestTechniques compares a snapshot start and KSM with their baselines,
// and leaves alone pairs that differ in more than one setting.
func TestTechniques(t *testing.T) {
	var s []results.Sample
	idle := adder(&s, "idle")
	idle("qemu", "startup", "sec", 2.4, 2.5, 2.6, 2.4, 2.5, 2.6)
	idle("qemu-snapshot", "startup", "sec", 0.8, 0.85, 0.9, 0.8, 0.85, 0.9)
	idle("qemu-ksm", "startup", "sec", 2.4, 2.5, 2.6, 2.4, 2.5, 2.6)
	idle("qemu", "host_mem_drop", "B", 164e6, 165e6, 166e6, 164e6, 165e6, 166e6)
	idle("qemu-ksm", "host_mem_drop", "B", 98e6, 99e6, 100e6, 98e6, 99e6, 100e6)
	idle("qemu-pc-snapshot", "startup", "sec", 0.5, 0.5, 0.5, 0.5, 0.5, 0.5)
	idle("qemu-template", "startup", "sec", 0.4, 0.42, 0.44, 0.4, 0.42, 0.44)
	vm := func(extra ...string) map[string]string {
		l := map[string]string{"machine": "microvm", "devices": "virtio", "image": "minimal", "accel": "tcg"}
		for i := 0; i+1 < len(extra); i += 2 {
			l[extra[i]] = extra[i+1]
		}
		return l
	}
	labels := map[string]map[string]string{
		"qemu": vm(), "qemu-snapshot": vm("boot", "snapshot"), "qemu-ksm": vm("ksm", "on"),
		"qemu-pc-snapshot": vm("boot", "snapshot", "machine", "pc"), // two settings differ: not compared
		// A later technique is compared against the baseline and the
		// techniques before it, never the other way round.
		"qemu-template": vm("boot", "template"),
	}
	classes := map[string]results.Class{}
	for v := range labels {
		classes[v] = results.ClassVM
	}
	cs := Techniques(results.MeasurementsOf(s), testVocab(), labels, testRoles(classes, labels))
	got := map[string]Comparison{}
	for _, c := range cs {
		got[c.Aspect+" "+c.Technique+" "+c.Baseline+" "+c.Metric] = c
	}
	if len(cs) != 4 {
		t.Fatalf("comparisons %+v, want snapshot vs cold, template vs cold and vs snapshot startup, and KSM vs off memory drop", cs)
	}
	if c, ok := got["boot qemu-snapshot qemu startup"]; !ok || c.Ratio < 2.9 || c.Ratio > 3.0 || c.P >= 0.05 || c.Lo > c.Ratio || c.Hi < c.Ratio {
		t.Errorf("snapshot vs cold: %+v, want about 2.94× faster", c)
	}
	if c, ok := got["boot qemu-template qemu startup"]; !ok || c.Value != "template" || c.Ratio < 5.9 || c.Ratio > 6.0 {
		t.Errorf("template vs cold: %+v, want about 5.95× faster", c)
	}
	if c, ok := got["boot qemu-template qemu-snapshot startup"]; !ok || c.Ratio < 2.0 || c.Ratio > 2.03 || c.P >= 0.05 {
		t.Errorf("template vs snapshot: %+v, want about 2.02× faster", c)
	}
	if notes := techniqueNotes(testVocab(), cs); len(notes) != 1 || !strings.Contains(notes[0], "side channel") {
		t.Errorf("technique notes %q, want the boot technique's declared note (KSM declares none)", notes)
	}
	if c, ok := got["ksm qemu-ksm qemu host_mem_drop"]; !ok || c.Ratio < 1.6 || c.Ratio > 1.7 {
		t.Errorf("KSM vs off: %+v, want about 1.67× less memory", c)
	}
}
