package images

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"virtbench/internal/required"
	"virtbench/internal/tools"
)

// TestBuildTools builds the tools layer from the host's packages and runs
// each program from it through the layer's own loader and libraries, as
// an instance does; the layer is built once, its disk is labelled.
func TestBuildTools(t *testing.T) {
	for _, tool := range tools.InLayer {
		if err := tool.Check(); err != nil {
			required.Skip(t, "tools", err.Error())
		}
	}
	cache := t.TempDir()
	l, err := BuildTools(cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Programs) != len(tools.InLayer) {
		t.Errorf("layer holds %v, want every one of %v", l.Programs, tools.InLayer)
	}
	version := map[string]string{"fio": "--version", "iperf3": "--version", "redis-server": "--version", "nginx": "-v"}
	for _, tool := range tools.InLayer {
		argv, err := tools.Command(l.Prefix, tool, version[tool.Name])
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = []string{} // nothing of the host's library path
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s from the layer: %v: %s", tool.Name, err, out)
		}
	}
	// Every library the programs load is in the layer, by the name the
	// loader looks for.
	libs, err := os.ReadDir(filepath.Join(l.Prefix, "lib"))
	if err != nil || len(libs) < 10 {
		t.Fatalf("layer libraries: %d, %v", len(libs), err)
	}
	again, err := BuildTools(cache)
	if err != nil || again.Root != l.Root {
		t.Errorf("second build: %v, %v; want the cached %s", again.Root, err, l.Root)
	}
	disk, err := BuildToolsDisk(l)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("e2label", disk).Output()
	if err != nil || strings.TrimSpace(string(out)) != tools.DiskLabel {
		t.Errorf("tools disk label %q, %v; want %q", out, err, tools.DiskLabel)
	}
}
