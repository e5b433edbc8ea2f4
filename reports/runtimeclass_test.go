package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"virtbench/analysis"
	"virtbench/internal/results"
)

// rcAnalysisValue is a run of native, gVisor and a VM with their idle
// memory and CPU measured: the VM's and gVisor's roles name their
// handlers.
func rcAnalysisValue(t *testing.T) *analysis.Analysis {
	t.Helper()
	var s []results.Sample
	add := adder(&s, "idle")
	add("native", results.MetricPSS, "B", 4e6, 4e6, 4e6, 4e6, 4e6, 4e6)
	add("native", results.MetricIdleCPU, "cores", 0.001, 0.001, 0.001, 0.001, 0.001, 0.001)
	add("gvisor", results.MetricPSS, "B", 40e6, 41e6, 39e6, 40e6, 42e6, 40e6)
	add("gvisor", results.MetricIdleCPU, "cores", 0.004, 0.005, 0.004, 0.004, 0.006, 0.004)
	add("qemu", results.MetricPSS, "B", 250e6, 251e6, 249e6, 250e6, 252e6, 250e6)
	roles := testRoles(t, map[string]results.Class{"native": results.ClassNone, "gvisor": results.ClassSandbox, "qemu": results.ClassVM}, nil)
	g, q := roles["gvisor"], roles["qemu"]
	g.Handler, q.Handler = "runsc", "kata-qemu"
	roles["gvisor"], roles["qemu"] = g, q
	return testAnalysis(t, s, outcome(roles, nil))
}

// rcAnalysis is rcAnalysisValue's RuntimeClasses, as written.
func rcAnalysis(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteRuntimeClasses(&b, rcAnalysisValue(t)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestRuntimeClasses: a RuntimeClass per isolating variant (not native),
// its overhead.podFixed the p95 of an idle instance less native's median,
// rounded up, readable back as the API's own type; a file of them is
// checked against what the run measured: the upstream default of 160Mi
// covers gVisor's, 4Mi does not.
func TestRuntimeClasses(t *testing.T) {
	out := rcAnalysis(t)
	file := filepath.Join(t.TempDir(), "rc.yaml")
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	rcs, err := ReadRuntimeClasses(file)
	if err != nil {
		t.Fatalf("the written RuntimeClasses do not read back: %v\n%s", err, out)
	}
	if len(rcs) != 2 || rcs[0].Handler != "runsc" || rcs[1].Handler != "kata-qemu" {
		t.Fatalf("RuntimeClasses %+v, want runsc and kata-qemu", rcs)
	}
	// p95 of gVisor's PSS: 41.75 MB; less native's 4 MB: 37.75 MB, just
	// over 36 MiB: 37Mi rounded up. CPU: p95 0.00575 less 0.001: 5m.
	if m, c := rcs[0].Overhead.PodFixed["memory"], rcs[0].Overhead.PodFixed["cpu"]; m.String() != "37Mi" || c.String() != "5m" {
		t.Errorf("gVisor's overhead memory %s cpu %s, want 37Mi and 5m", m.String(), c.String())
	}
	if _, ok := rcs[1].Overhead.PodFixed["cpu"]; ok || !strings.Contains(rcs[0].Annotations["virtbench.io/memory"], "p95 of an idle instance's PSS over 6 instances") {
		t.Errorf("qemu's CPU, unmeasured, is charged; or the memory's source is not stated: %v", rcs[0].Annotations)
	}
	check := filepath.Join(t.TempDir(), "check.yaml")
	os.WriteFile(check, []byte("apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: gvisor}\nhandler: runsc\noverhead: {podFixed: {memory: 160Mi, cpu: 10m}}\n---\napiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: kata}\nhandler: kata-qemu\noverhead: {podFixed: {memory: 4Mi}}\n"), 0o644)
	rcs, err = ReadRuntimeClasses(check)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	covered, err := CheckRuntimeClasses(&b, rcAnalysisValue(t), rcs)
	if err != nil || covered || !strings.Contains(b.String(), "gvisor (handler runsc, measured as gvisor): memory 160Mi covers the 37Mi measured; cpu 10m covers the 5m measured") ||
		!strings.Contains(b.String(), "kata (handler kata-qemu, measured as qemu): memory 4Mi does not cover") {
		t.Errorf("check: covered %v, %v\n%s", covered, err, b.String())
	}
}

// TestReadRuntimeClassesBad: a file that is not one names its line.
func TestReadRuntimeClassesBad(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: a}\nhandler: runc\n---\napiVersion: v1\nkind: Pod\n", ":6: not a RuntimeClass: apiVersion \"v1\", kind \"Pod\""},
		{"apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: a}\nhandler: runc\nhandlr: x\n", ":1: not a RuntimeClass: json: unknown field \"handlr\""},
		{"apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: a}\nhandler: Not_A_Label\n", ":1: handler \"Not_A_Label\""},
		{"", "no RuntimeClass in it"},
	} {
		file := filepath.Join(t.TempDir(), "rc.yaml")
		os.WriteFile(file, []byte(tt.src), 0o644)
		if _, err := ReadRuntimeClasses(file); err == nil || !strings.Contains(err.Error(), file+tt.want) && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ReadRuntimeClasses(%q) = %v, want %q", tt.src, err, tt.want)
		}
	}
}
