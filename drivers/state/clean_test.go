package state

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"virtbench/internal/required"

	"virtbench/internal/cgroups"
	"virtbench/internal/ksm"
)

// fakeKnobs returns a directory of KSM knobs with the given settings.
func fakeKnobs(t *testing.T, s ksm.Settings) string {
	t.Helper()
	knobs := t.TempDir()
	for name, v := range map[string]int{"run": s.Run, "pages_to_scan": s.PagesToScan, "sleep_millisecs": s.SleepMillisecs} {
		if err := os.WriteFile(filepath.Join(knobs, name), []byte(strconv.Itoa(v)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return knobs
}

// TestCleanRestoresKSM: a killed run's hold on the host's KSM settings is
// released by clean, which puts them back, merged pages unmerged first;
// the killed run's host-wide record goes too.
func TestCleanRestoresKSM(t *testing.T) {
	saved := ksm.Settings{Run: 0, PagesToScan: 100, SleepMillisecs: 20}
	knobs := fakeKnobs(t, saved)
	root := t.TempDir()
	run := filepath.Join(root, "run-x")
	if err := os.MkdirAll(run, 0o700); err != nil {
		t.Fatal(err)
	}
	// A holder that no longer runs: the run that was killed.
	dead := Process{Pid: os.Getpid(), Start: 1}
	if err := writeJSON(filepath.Join(root, KSMHoldsFile), KSMHolds{Dir: knobs, Saved: saved, Holders: []Process{dead}}); err != nil {
		t.Fatal(err)
	}
	if _, err := RegisterRun(root, Owner{Process: dead, RunDir: "/x"}); err != nil {
		t.Fatal(err)
	}
	if err := ksm.Set(knobs, ksm.Settings{Run: 1, PagesToScan: 5000, SleepMillisecs: 10}); err != nil {
		t.Fatal(err)
	}
	did, err := CleanHost(root)
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(filepath.Join(root, runsDir)); len(left) != 0 {
		t.Errorf("a dead run's record is left: %v", left)
	}
	if got, _ := ksm.Read(knobs); got != saved {
		t.Errorf("KSM after clean %+v, want %+v", got, saved)
	}
	if !strings.Contains(strings.Join(did, "\n"), "restored the host's KSM settings: run=0 pages_to_scan=100 sleep_millisecs=20") {
		t.Errorf("clean said %q", did)
	}
	if _, err := os.Stat(filepath.Join(root, KSMHoldsFile)); !os.IsNotExist(err) {
		t.Errorf("KSM holds left: %v", err)
	}
	if err := Remove(Orphan{Dir: run}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(run); !os.IsNotExist(err) {
		t.Errorf("state directory left: %v", err)
	}
}

// TestKSMHolds: of two runs that hold KSM on at once, the first to finish
// leaves it on for the other, and the last puts back what the first found
// (the repro left the host with KSM on). A live holder keeps clean from
// restoring.
func TestKSMHolds(t *testing.T) {
	found := ksm.Settings{Run: 0, PagesToScan: 100, SleepMillisecs: 20}
	knobs := fakeKnobs(t, found)
	root := t.TempDir()
	on := ksm.Settings{Run: 1, PagesToScan: 100, SleepMillisecs: 200}
	other := ProcessOf(os.Getppid()) // another live process: the second run
	if err := HoldKSM(root, knobs); err != nil {
		t.Fatal(err)
	}
	if err := ksm.Set(knobs, on); err != nil {
		t.Fatal(err)
	}
	// The second run holds them as it finds them (on): the record keeps
	// what the first found.
	err := withHolds(root, func(h *KSMHolds) error { h.Holders = append(h.Holders, other); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if restored, err := ReleaseKSM(root); err != nil || restored != nil {
		t.Fatalf("first release: restored %v, %v; want nothing while the other run holds", restored, err)
	}
	if got, _ := ksm.Read(knobs); got != on {
		t.Errorf("KSM after the first run ended %+v, want still %+v for the other", got, on)
	}
	if _, err := CleanHost(root); err != nil {
		t.Fatal(err)
	}
	if got, _ := ksm.Read(knobs); got != on {
		t.Errorf("KSM after clean while a run holds it %+v, want %+v", got, on)
	}
	// The other run ends (its hold pruned as if it had exited).
	err = withHolds(root, func(h *KSMHolds) error { h.Holders = nil; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if restored, err := ReleaseKSM(root); err != nil || restored == nil || *restored != found {
		t.Fatalf("last release: restored %v, %v; want %+v", restored, err, found)
	}
	if got, _ := ksm.Read(knobs); got != found {
		t.Errorf("KSM after the last run ended %+v, want %+v", got, found)
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
	// The host's own Podman store, and a runtime that is a program.
	host := PodmanStore{Root: "/var/lib/containers/storage", RunRoot: "/run/containers/storage", TmpDir: "/run/libpod", Runtime: "runc"}
	planted := PodmanStore{Root: inst, RunRoot: filepath.Join(HostRoot, "p", "run"), TmpDir: filepath.Join(HostRoot, "p", "tmp"), Runtime: evil}
	for i, s := range []PodmanStore{host, planted} {
		dir := filepath.Join(run, "podman-"+strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := Write(dir, Record{Driver: "podman", Containers: []string{"web"}, Podman: &s}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Clean(Orphan{Dir: run})
	if _, serr := os.Stat(marker); serr == nil {
		t.Fatal("clean ran the program a record named")
	}
	for _, want := range []string{"ignored a record of runtime \"" + evil, "ignored a record of runtime \"runc\" with root \"/run/runc\"", "ignored a recorded mount /proc", "ignored a record of a Podman store {Root:/var/lib/containers/storage", "ignored a record of a Podman store {Root:" + inst} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Clean error = %v, want %q", err, want)
		}
	}
}

// TestCheckRoot: a state root someone else made, or can write, is refused
// before anything in it is read.
func TestCheckRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		required.Skip(t, "root", "needs root to give a directory to another user: run as root (./run.sh test)")
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

// TestKillCgroups: clean kills the processes of a recorded cgroup only
// where it is the run's (beneath the cgroup root, in virtbench.RUN).
func TestKillCgroups(t *testing.T) {
	if os.Geteuid() != 0 {
		required.Skip(t, "root", "needs root to make a cgroup: run as root (./run.sh test)")
	}
	run := filepath.Join(t.TempDir(), "run-killtest")
	parent, err := cgroups.OwnDirs("virtbench.run-killtest")
	if err != nil {
		t.Fatal(err)
	}
	cg := ""
	for _, d := range parent {
		if strings.Contains(d, "/memory/") || cgroups.Version() == 2 {
			cg = filepath.Join(d, "lxc-i", "init.scope")
		}
	}
	if err := os.MkdirAll(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cgroups.RemoveTrees([]string{filepath.Dir(filepath.Dir(cg))}) })
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sleep.Wait() }()
	t.Cleanup(func() { sleep.Process.Kill() })
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(sleep.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	// Recorded by another run: not this one's to kill.
	other := cleaner{dir: filepath.Join(t.TempDir(), "run-other")}
	other.killCgroups([]Record{{Driver: "lxc", Cgroups: []string{filepath.Dir(cg)}}})
	select {
	case <-exited:
		t.Fatal("clean killed the process of another run's cgroup")
	case <-time.After(100 * time.Millisecond):
	}
	c := cleaner{dir: run}
	c.killCgroups([]Record{{Driver: "lxc", Cgroups: []string{filepath.Dir(cg)}}})
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatalf("clean left the process beneath the run's cgroup running; it did %v", c.did)
	}
}
