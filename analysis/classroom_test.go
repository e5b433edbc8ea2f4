package analysis

import (
	"slices"
	"strings"
	"testing"

	"virtbench/internal/results"
)

// classroomSamples are the samples of a run with a baseline, a
// container, gVisor, Wine and three TCG VMs: one that asked for KVM where
// usable, and a virtio/emulated pair.
func classroomSamples() []results.Sample {
	var s []results.Sample
	idle, sys, fio := adder(&s, "idle"), adder(&s, "syscall"), adder(&s, "fileio")
	idle("native", "startup", "sec", 0.010, 0.011, 0.012, 0.010, 0.011, 0.012)
	idle("container", "startup", "sec", 0.014, 0.015, 0.016, 0.014, 0.015, 0.016)
	idle("gvisor", "startup", "sec", 0.24, 0.25, 0.26, 0.24, 0.25, 0.26)
	idle("wine", "startup", "sec", 0.9, 1.0, 1.1, 0.9, 1.0, 1.1)
	idle("qemu", "startup", "sec", 1.8, 1.9, 2.0, 1.8, 1.9, 2.0)
	idle("qemu-virtio", "startup", "sec", 2.8, 2.9, 3.0, 2.8, 2.9, 3.0)
	idle("qemu-emulated", "startup", "sec", 2.9, 3.0, 3.1, 2.9, 3.0, 3.1)
	sys("native", "syscall.getppid", "sec/op", 1.0e-6, 1.01e-6, 0.99e-6, 1.0e-6, 1.02e-6, 0.98e-6)
	sys("gvisor", "syscall.getppid", "sec/op", 1.2e-4, 1.3e-4, 1.25e-4, 1.2e-4, 1.3e-4, 1.25e-4)
	sys("wine", "syscall.getppid", "sec/op", 5.4e-5, 5.5e-5, 5.3e-5, 5.4e-5, 5.6e-5, 5.4e-5)
	sys("qemu", "syscall.getppid", "sec/op", 0.6e-6, 0.62e-6, 0.61e-6, 0.6e-6, 0.63e-6, 0.59e-6) // faster than native
	fio("qemu-virtio", "fileio.write", "B/s", 80e6, 82e6, 81e6, 79e6, 80e6, 81e6)
	fio("qemu-emulated", "fileio.write", "B/s", 20e6, 21e6, 19e6, 20e6, 20e6, 21e6)
	return s
}

// classroomRun is the run of classroomSamples, with its variants' labels
// and roles.
func classroomRun(s []results.Sample) *Run {
	vm := func(devices, machine string) map[string]string {
		return map[string]string{"accel": "tcg", "requested_accel": "auto", "devices": devices, "machine": machine,
			"guest_kernel": "6.1.0-40-amd64", "mitigations": "spectre_v2=Retpolines"}
	}
	r := testRun(s, results.Outcome{})
	r.Provenance.Kernel, r.Provenance.KVM = "6.18.44", "absent"
	r.Provenance.Mitigations = "meltdown=PTI spec_store_bypass=vulnerable spectre_v2=Retpolines"
	classes := map[string]results.Class{"native": results.ClassNone, "container": results.ClassOSLevel, "gvisor": results.ClassSandbox, "wine": results.ClassApplication,
		"qemu": results.ClassVM, "qemu-virtio": results.ClassVM, "qemu-emulated": results.ClassVM}
	labels := map[string]map[string]string{"gvisor": {"platform": "ptrace"},
		"qemu": vm("virtio", "microvm"), "qemu-virtio": vm("virtio", "pc"), "qemu-emulated": vm("emulated", "pc")}
	r.Status.Outcome = outcome(testRoles(classes, labels), labels)
	return r
}

func TestClassroom(t *testing.T) {
	a := Analyze(classroomRun(classroomSamples()), nil)
	var kinds []string
	for _, l := range a.Lessons {
		kinds = append(kinds, l.Virtualization)
		if l.Text == "" || len(l.Figures) == 0 {
			t.Errorf("lesson %s: no text or figures: %+v", l.Virtualization, l)
		}
		// Each kind but the baseline's and Wine's has a layer that
		// isolates the workload.
		isolated := slices.ContainsFunc(l.Layers, func(y Layer) bool { return y.Isolates })
		if isolated == (l.Virtualization == KindNone || l.Virtualization == KindApplication) {
			t.Errorf("lesson %s: a layer isolates = %v", l.Virtualization, isolated)
		}
	}
	want := []string{KindNone, KindApplication, KindOSLevel, KindSandbox, KindEmulation, KindHWAssisted}
	if strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Errorf("lessons %v, want %v", kinds, want)
	}
	hw := a.Lessons[5].Figures[0]
	if !strings.Contains(hw, "Not measured on this host") || !strings.Contains(hw, "qemu, qemu-virtio, qemu-emulated") {
		t.Errorf("hardware-assisted lesson on a host without KVM: %q", hw)
	}
	if f := a.Lessons[1].Figures; len(f) != 2 || !strings.Contains(f[0], "wine: start 1.000s") || !strings.Contains(f[1], "one call (syscall.getppid, median): native 1.000µs/op, gvisor 125.0µs/op, wine 54.00µs/op") {
		t.Errorf("wine figures: %q", f)
	}
	if f := a.Lessons[3].Figures[0]; !strings.Contains(f, "gvisor: start 250.0ms (22.7× native)") || !strings.Contains(f, "syscall.getppid 0.01× native") {
		t.Errorf("gvisor figures: %q", f)
	}

	if len(a.Techniques) != 1 {
		t.Fatalf("comparisons %+v, want one (the pc pair; the microvm has no emulated twin)", a.Techniques)
	}
	d := a.Techniques[0]
	if !d.Devices || d.Technique != "qemu-virtio" || d.Baseline != "qemu-emulated" || d.Metric != "fileio.write" || d.Ratio < 3.9 || d.Ratio > 4.1 || d.Lo > d.Ratio || d.Hi < d.Ratio || d.P >= 0.05 {
		t.Errorf("device comparison %+v, want virtio 4× emulated on fileio.write", d)
	}

	var note string
	for _, rt := range a.Ratios {
		if rt.Variant == "qemu" && rt.Metric == "syscall.getppid" {
			note = rt.Note
		} else if rt.Note != "" {
			t.Errorf("%s %s has a note but does not beat native: %q", rt.Variant, rt.Metric, rt.Note)
		}
	}
	for _, w := range []string{"runs under TCG", "its kernel is 6.1.0-40-amd64, the host's 6.18.44",
		"the host kernel applies meltdown=PTI, spec_store_bypass=vulnerable where the guest kernel does not"} {
		if !strings.Contains(note, w) {
			t.Errorf("note on qemu's faster getppid:\n%s\nwant it to say %q", note, w)
		}
	}
}

// TestClassroomNeedsTwoKinds: a run of one kind has no classroom section.
func TestClassroomNeedsTwoKinds(t *testing.T) {
	var keep []results.Sample
	for _, s := range classroomSamples() {
		if strings.HasPrefix(s.Variant, "qemu") {
			keep = append(keep, s)
		}
	}
	r := classroomRun(keep)
	classes := map[string]results.Class{}
	for d := range r.Status.Outcome.Labels {
		classes[d] = results.ClassVM
	}
	r.Status.Outcome = outcome(testRoles(classes, r.Status.Outcome.Labels), r.Status.Outcome.Labels)
	if a := Analyze(r, nil); len(a.Lessons) != 0 {
		t.Errorf("lessons of a VM-only run: %+v", a.Lessons)
	}
}
