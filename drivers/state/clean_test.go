package state

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"virtbench/internal/ksm"
)

// TestCleanRestoresKSM: a killed run's record of the host's KSM settings
// puts them back, merged pages unmerged first.
func TestCleanRestoresKSM(t *testing.T) {
	knobs := t.TempDir()
	for name, v := range map[string]int{"run": 1, "pages_to_scan": 5000, "sleep_millisecs": 10} {
		if err := os.WriteFile(filepath.Join(knobs, name), []byte(strconv.Itoa(v)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := filepath.Join(t.TempDir(), "run-x")
	rec := filepath.Join(run, "host-ksm")
	if err := os.MkdirAll(rec, 0o700); err != nil {
		t.Fatal(err)
	}
	saved := ksm.Settings{Run: 0, PagesToScan: 100, SleepMillisecs: 20}
	if err := Write(rec, Record{Driver: "host", KSM: &KSM{Dir: knobs, Saved: saved}}); err != nil {
		t.Fatal(err)
	}
	did, err := Clean(Orphan{Dir: run})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := ksm.Read(knobs); got != saved {
		t.Errorf("KSM after clean %+v, want %+v", got, saved)
	}
	if !strings.Contains(strings.Join(did, "\n"), "restored the host's KSM settings: run=0 pages_to_scan=100 sleep_millisecs=20") {
		t.Errorf("clean said %q", did)
	}
	if err := Remove(Orphan{Dir: run}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(run); !os.IsNotExist(err) {
		t.Errorf("state directory left: %v", err)
	}
}

// TestPlantedRecords: a record cannot make clean run a program, delete
// another root's containers or unmount what is not the run's.
func TestPlantedRecords(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run-x")
	inst := filepath.Join(run, "runc-i")
	if err := os.MkdirAll(inst, 0o700); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "ran")
	evil := filepath.Join(t.TempDir(), "evil.sh")
	if err := os.WriteFile(evil, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(inst, Record{Driver: "runc", Mounts: []string{"/proc"}, Runtimes: []Runtime{{Binary: evil, Root: inst}, {Binary: "runc", Root: "/run/runc"}}}); err != nil {
		t.Fatal(err)
	}
	_, err := Clean(Orphan{Dir: run})
	if _, serr := os.Stat(marker); serr == nil {
		t.Fatal("clean ran the program a record named")
	}
	for _, want := range []string{"ignored a record of runtime \"" + evil, "ignored a record of runtime \"runc\" with root \"/run/runc\"", "ignored a recorded mount /proc"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Clean error = %v, want %q", err, want)
		}
	}
}

// TestCheckRoot: a state root someone else made, or can write, is refused
// before anything in it is read.
func TestCheckRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another user: run as root (./run.sh test)")
	}
	base := t.TempDir()
	mine := filepath.Join(base, "mine")
	if _, err := LockRoot(mine); err != nil {
		t.Fatalf("LockRoot of a new root: %v", err)
	}
	if err := CheckRoot(filepath.Join(base, "none")); err != nil {
		t.Errorf("CheckRoot of a missing root: %v", err)
	}
	open := filepath.Join(base, "open")
	theirs := filepath.Join(base, "theirs")
	link := filepath.Join(base, "link")
	for _, d := range []string{open, theirs} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(mine, link); err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]string{open: "writable by others", theirs: "belongs to uid 65534", link: "not a directory"} {
		if _, err := Orphans(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Orphans(%s) = %v, want %q", filepath.Base(dir), err, want)
		}
		if _, err := LockRoot(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LockRoot(%s) = %v, want %q", filepath.Base(dir), err, want)
		}
	}
}
