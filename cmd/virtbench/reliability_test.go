package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"virtbench/bench"
	"virtbench/drivers"
	"virtbench/drivers/drivertest"
	"virtbench/drivers/state"
)

// leftovers lists what a run whose state directory is stateDir left on the
// host: the directory itself, mounts under it, its cgroups, and processes
// whose executable lies under cache (the agent copies of that run's images)
// or is agent.
func leftovers(stateDir, cache, agent string) []string {
	var left []string
	if _, err := os.Stat(stateDir); err == nil {
		left = append(left, "state directory "+stateDir)
	}
	for _, m := range drivertest.MountsUnder(stateDir) {
		left = append(left, "mount "+m)
	}
	for _, cg := range drivertest.CgroupLeaks(drivers.Env{StateDir: stateDir}) {
		left = append(left, "cgroup "+cg)
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && (exe == agent || strings.HasPrefix(exe, cache+"/")) {
			left = append(left, "process "+e.Name()+" "+exe)
		}
	}
	return left
}

// startRun starts virtbench run on a scenario file and returns the command,
// the run directory and the run's state directory once it exists.
func startRun(t *testing.T, scenario, cache, agent string) (*exec.Cmd, string, string) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(file, []byte(scenario), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	cmd := exec.Command(virtbench, "run", file, "--out", out, "--agent", agent)
	cmd.Env = append(os.Environ(), "VIRTBENCH_CACHE="+cache)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if sd := stateDirOf(cmd.Process.Pid); sd != "" {
			return cmd, out, sd
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the run's state directory did not appear")
	return nil, "", ""
}

// stateDirOf finds the state directory owned by pid.
func stateDirOf(pid int) string {
	dirs, _ := filepath.Glob(filepath.Join(stateRoot(), "run-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, state.OwnerFile))
		var o state.Owner
		if err == nil && json.Unmarshal(b, &o) == nil && o.Pid == pid {
			return d
		}
	}
	return ""
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// instanceDirs counts instance directories in a state directory.
func instanceDirs(stateDir string) int {
	ents, _ := os.ReadDir(stateDir)
	n := 0
	for _, e := range ents {
		if e.IsDir() {
			n++
		}
	}
	return n
}

// TestInterruptPhases interrupts runs while images are built, while a ramp
// of containers starts, and while a VM boots; each must exit 130, keep its
// samples, and leave nothing behind.
func TestInterruptPhases(t *testing.T) {
	drivertest.RequiresRoot(t)
	agent := privateAgent(t)
	tests := []struct {
		name     string
		scenario string
		// ready says when to interrupt, given the run and state directories.
		ready func(out, stateDir string) bool
	}{
		{"image build", "name: t\ndrivers: [qemu]\nworkloads: [idle]\nreps: 1\nwarmup: 0\noptions: {qemu.accel: tcg}\n",
			func(string, string) bool { return true }},
		{"density ramp", "name: t\ndrivers: [native, container]\nworkloads: [idle]\ninstances: [1, 200]\nreps: 1\nwarmup: 0\nsettle: 0s\n",
			func(_, sd string) bool { return instanceDirs(sd) >= 20 }},
		{"VM boot", "name: t\ndrivers: [native, qemu]\nworkloads: [idle]\nreps: 1\nwarmup: 0\noptions: {qemu.accel: tcg}\n",
			func(_, sd string) bool { return instanceDirs(sd) >= 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := t.TempDir()
			cmd, out, sd := startRun(t, tt.scenario, cache, agent)
			waitFor(t, 2*time.Minute, "the phase to interrupt", func() bool { return tt.ready(out, sd) })
			before, _ := bench.ReadSamples(filepath.Join(out, bench.SamplesFile))
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
				t.Errorf("exit %d, want 130", code)
			}
			after, err := bench.ReadSamples(filepath.Join(out, bench.SamplesFile))
			if err != nil || len(after) < len(before) {
				t.Errorf("samples: %d before the interrupt, %d after (%v)", len(before), len(after), err)
			}
			var st bench.Status
			if err := bench.ReadJSON(out, bench.StatusFile, &st); err != nil || st.State != bench.StateInterrupted {
				t.Errorf("run.json %+v, %v; want state interrupted", st, err)
			}
			if left := leftovers(sd, cache, agent); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// TestKilledRunCleaned SIGKILLs virtbench with containers and runc
// containers running, then checks that clean removes what it left.
func TestKilledRunCleaned(t *testing.T) {
	drivertest.RequiresRoot(t)
	agent := privateAgent(t)
	cache := t.TempDir()
	cmd, out, sd := startRun(t, "name: t\ndrivers: [container, runc]\nworkloads: [idle]\ninstances: [4]\nreps: 1000\nwarmup: 0\nsettle: 1s\n", cache, agent)
	// settle: 1s keeps instances up a while; a trial first waits (up to
	// bench.SettleLimit) for the host's memory to stand still.
	waitFor(t, 2*time.Minute, "running instances", func() bool { return instanceDirs(sd) >= 4 })
	cmd.Process.Kill()
	cmd.Wait()
	if left := leftovers(sd, cache, agent); len(left) == 0 {
		t.Log("the killed run left nothing (its instances had just stopped)")
	}
	code, stdout, stderr := cli(t, "clean")
	if code != exitOK {
		t.Fatalf("clean: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if left := leftovers(sd, cache, agent); len(left) > 0 {
		t.Errorf("left after clean: %v\nclean said:\n%s", left, stdout)
	}
	var st bench.Status
	if err := bench.ReadJSON(out, bench.StatusFile, &st); err != nil || st.State != bench.StateKilled {
		t.Errorf("run.json after clean: %+v, %v; want state killed", st, err)
	}
	if _, err := bench.ReadSamples(filepath.Join(out, bench.SamplesFile)); err != nil {
		t.Errorf("samples of the killed run: %v", err)
	}
}
