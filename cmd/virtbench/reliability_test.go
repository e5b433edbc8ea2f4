package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"virtbench/drivers"
	"virtbench/drivers/drivertest"
	"virtbench/drivers/podman"
	"virtbench/drivers/state"
	"virtbench/internal/ksm"
	"virtbench/internal/required"
	"virtbench/internal/results"
)

// leftovers lists what a run whose state directory is stateDir left on the
// host: the directory itself, mounts under it, its cgroups, its Docker
// containers, processes whose executable is agent or whose command line
// names the run's state directory or image cache (a VM's kernel), and
// network interfaces that were not there before (links).
func leftovers(stateDir, cache, agent, links string) []string {
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
	if out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=virtbench.run="+filepath.Base(stateDir)).Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
		left = append(left, "docker containers "+strings.Join(strings.Fields(string(out)), ","))
	}
	if s := podman.Store(cache); exists(s.Root) {
		s.Runtime = "runc"
		out, err := exec.Command("podman", append(s.Args(), "ps", "-aq", "--filter", "label=virtbench.run="+filepath.Base(stateDir))...).Output()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			left = append(left, fmt.Sprintf("podman containers %s (%v)", strings.Join(strings.Fields(string(out)), ","), err))
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if exe == agent || strings.HasPrefix(exe, cache+"/") || strings.Contains(string(cmdline), cache+"/") || strings.Contains(string(cmdline), stateDir) {
			left = append(left, "process "+e.Name()+" "+exe)
		}
	}
	if now := hostLinks(); now != links {
		left = append(left, "network interfaces "+now+" (before: "+links+")")
	}
	return left
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// hostLinks names the host's network interfaces.
func hostLinks() string {
	ifs, _ := net.Interfaces()
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	return strings.Join(names, ",")
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
		// The template's RAM file and snapshot, and its clones, go.
		{"VM template clones", "name: t\ndrivers: [qemu]\nworkloads: [idle]\ninstances: [2]\nreps: 100\nwarmup: 0\nsettle: 1s\noptions: {qemu.accel: tcg, qemu.boot: template}\n",
			func(_, sd string) bool { return instanceDirs(sd) >= 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := t.TempDir()
			links := hostLinks()
			cmd, out, sd := startRun(t, tt.scenario, cache, agent)
			waitFor(t, 2*time.Minute, "the phase to interrupt", func() bool { return tt.ready(out, sd) })
			before, _ := results.ReadSamples(filepath.Join(out, results.SamplesFile), results.Linked())
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
				t.Errorf("exit %d, want 130", code)
			}
			after, err := results.ReadSamples(filepath.Join(out, results.SamplesFile), results.Linked())
			if err != nil || len(after) < len(before) {
				t.Errorf("samples: %d before the interrupt, %d after (%v)", len(before), len(after), err)
			}
			var st results.Status
			if err := results.ReadJSON(out, results.StatusFile, &st); err != nil || st.State != results.StateInterrupted {
				t.Errorf("run.json %+v, %v; want state interrupted", st, err)
			}
			if left := leftovers(sd, cache, agent, links); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// TestKilledRunCleaned SIGKILLs virtbench while runc, gVisor, Docker, LXC, Podman and qemu
// instances run and during a density sweep of containers, then checks that
// clean leaves the host as it was: no state, mount, cgroup, container,
// process or network interface of the run.
func TestKilledRunCleaned(t *testing.T) {
	drivertest.RequiresRoot(t)
	agent := privateAgent(t)
	tests := []struct {
		name, driver, scenario string
		instances              int
	}{
		{"runc", "runc", "name: t\ndrivers: [container, runc]\nworkloads: [idle]\ninstances: [4]\nreps: 1000\nwarmup: 0\nsettle: 1s\n", 4},
		{"gvisor", "gvisor", "name: t\ndrivers: [gvisor]\nworkloads: [idle]\ninstances: [3]\nreps: 1000\nwarmup: 0\nsettle: 1s\noptions: {gvisor.network: veth}\n", 3},
		{"docker", "docker", "name: t\ndrivers: [docker]\nworkloads: [idle]\ninstances: [3]\nreps: 1000\nwarmup: 0\nsettle: 1s\noptions: {docker.network: veth}\n", 3},
		{"lxc", "lxc", "name: t\ndrivers: [lxc]\nworkloads: [idle]\ninstances: [3]\nreps: 1000\nwarmup: 0\nsettle: 1s\noptions: {lxc.network: veth}\n", 3},
		{"podman", "podman", "name: t\ndrivers: [podman]\nworkloads: [idle]\ninstances: [3]\nreps: 1000\nwarmup: 0\nsettle: 1s\noptions: {podman.network: veth}\n", 3},
		// settle: 0s: no CPU window, so that a host loaded by others
		// (stress-ng beside the tests) does not end the sweep early.
		{"container density", "container", "name: t\ndrivers: [container]\nworkloads: [idle]\nsettle: 0s\ndensity: {step: geometric, factor: 2, max: 64}\n", 8},
		{"qemu", "qemu", "name: t\ndrivers: [qemu]\nworkloads: [http]\nreps: 1000\nwarmup: 0\noptions: {qemu.accel: tcg, qemu.network: tap}\n", 1},
		{"qemu template", "qemu", "name: t\ndrivers: [qemu]\nworkloads: [idle]\ninstances: [2]\nreps: 1000\nwarmup: 0\nsettle: 1s\noptions: {qemu.accel: tcg, qemu.boot: template}\n", 2},
		// KSM on: clean puts the host's settings back.
		{"qemu with KSM", "qemu", "name: t\ndrivers: [qemu]\nworkloads: [idle]\ninstances: [2]\nreps: 1000\nwarmup: 0\nsettle: 1s\noptions: {qemu.accel: tcg, host.ksm: \"on\"}\n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.driver == "docker" {
				if err := exec.Command("docker", "info").Run(); err != nil {
					required.Skip(t, "docker", "no Docker engine answers: install and start docker.io")
				}
			}
			cache := t.TempDir()
			if tt.driver == "podman" {
				t.Cleanup(func() {
					if err := podman.RemoveStore(cache); err != nil {
						t.Error(err)
					}
				})
			}
			links := hostLinks()
			ksmBefore, ksmErr := ksm.Read(ksm.Dir)
			cmd, out, sd := startRun(t, tt.scenario, cache, agent)
			// settle: 1s keeps instances up a while; a trial first waits (up
			// to bench.SettleLimit) for the host's memory to stand still.
			waitFor(t, 3*time.Minute, "running instances", func() bool { return instanceDirs(sd) >= tt.instances })
			cmd.Process.Kill()
			cmd.Wait()
			if left := leftovers(sd, cache, agent, links); len(left) == 0 {
				t.Log("the killed run left nothing (its instances had just stopped)")
			}
			code, stdout, stderr := cli(t, "clean")
			if code != exitOK {
				t.Fatalf("clean: exit %d\n%s\n%s", code, stdout, stderr)
			}
			// A VM killed through Pdeathsig, and a network namespace freed
			// by the kernel's worker, go within a moment.
			var left []string
			for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				if left = leftovers(sd, cache, agent, links); len(left) == 0 {
					break
				}
			}
			if len(left) > 0 {
				t.Errorf("left after clean: %v\nclean said:\n%s", left, stdout)
			}
			if ksmAfter, err := ksm.Read(ksm.Dir); ksmErr == nil && (err != nil || ksmAfter != ksmBefore) {
				t.Errorf("KSM settings after clean %+v (%v), before the run %+v\nclean said:\n%s", ksmAfter, err, ksmBefore, stdout)
			}
			var st results.Status
			if err := results.ReadJSON(out, results.StatusFile, &st); err != nil || st.State != results.StateKilled {
				t.Errorf("run.json after clean: %+v, %v; want state killed", st, err)
			}
			if _, err := results.ReadSamples(filepath.Join(out, results.SamplesFile), results.Linked()); err != nil && !errors.Is(err, results.ErrTornLine) {
				t.Errorf("samples of the killed run: %v", err)
			}
		})
	}
}
