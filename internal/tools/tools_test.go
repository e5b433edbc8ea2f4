package tools

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMissing: a tool the host lacks, or a layer without it, says which
// package to install.
func TestMissing(t *testing.T) {
	if err := (Tool{Name: "nope", Path: "/nonexistent/nope", Package: "nope-pkg"}).Check(); err == nil || !strings.Contains(err.Error(), "apt-get install nope-pkg") {
		t.Errorf("Check of a missing tool: %v, want the apt-get line", err)
	}
	if err := (Tool{Name: "dir", Path: t.TempDir(), Package: "p"}).Check(); err == nil {
		t.Error("Check of a directory: no error")
	}
	if _, err := Command(t.TempDir(), FIO); err == nil || !strings.Contains(err.Error(), "apt-get install fio") {
		t.Errorf("Command on an empty layer: %v, want the apt-get line", err)
	}
}

// TestCommand: a program runs through the layer's loader with the
// layer's libraries, whatever the instance's own /lib holds.
func TestCommand(t *testing.T) {
	prefix := t.TempDir()
	if err := os.MkdirAll(filepath.Join(prefix, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(prefix, "bin", "fio"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Command(prefix, FIO, "--version")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{prefix + "/lib/ld-linux-x86-64.so.2", "--library-path", prefix + "/lib", prefix + "/bin/fio", "--version"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Command = %q, want %q", got, want)
	}
	t.Setenv(DirEnv, "/elsewhere")
	if Prefix() != "/elsewhere" {
		t.Errorf("Prefix with %s set = %q", DirEnv, Prefix())
	}
}
