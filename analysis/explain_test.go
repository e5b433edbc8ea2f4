package analysis

import (
	"maps"
	"strings"
	"testing"

	"virtbench/internal/results"
)

// TestStorageNotes: a container whose files a FUSE storage driver served
// (Docker's fuse-overlayfs) has its faster direct I/O and its slower file
// serving explained by it; a container on the kernel's overlayfs, and a
// workload that reads no files of its own, get no such note.
func TestStorageNotes(t *testing.T) {
	var samples []results.Sample
	fio, nginx := adder(&samples, "fio"), adder(&samples, "nginx")
	for _, v := range []string{"native", "docker", "docker-volume"} {
		iops, rps := 1000.0, 10000.0
		if v == "docker" {
			iops, rps = 2700, 1200
		}
		fio(v, "fio.randread_iops", "op/s", iops, iops+1, iops+2, iops+3, iops+4, iops+5)
		nginx(v, "nginx.rps", "op/s", rps, rps+1, rps+2, rps+3, rps+4, rps+5)
	}
	voc := testVocab()
	voc.Workloads = maps.Clone(voc.Workloads)
	w := voc.Workloads["nginx"]
	w.Files = true
	voc.Workloads["nginx"] = w
	roles := map[string]results.Role{
		"native":        {Class: results.ClassNone, Baseline: true},
		"docker":        {Class: results.ClassOSLevel, Storage: "fuse-overlayfs"},
		"docker-volume": {Class: results.ClassOSLevel, Storage: "bind mount"},
	}
	run := testRun(samples, outcome(roles, nil))
	run.Vocabulary = voc
	notes := map[string]string{}
	for _, r := range Analyze(run, nil).Ratios {
		notes[r.Variant+" "+r.Metric] = r.Note
	}
	for key, want := range map[string]string{
		"docker fio.randread_iops":        "its files were served by the engine's fuse-overlayfs storage driver",
		"docker nginx.rps":                "its files were served by the engine's fuse-overlayfs storage driver",
		"docker-volume fio.randread_iops": "",
		"docker-volume nginx.rps":         "",
	} {
		if got := notes[key]; want == "" && got != "" || !strings.Contains(got, want) {
			t.Errorf("%s: note %q, want %q", key, got, want)
		}
	}
}
