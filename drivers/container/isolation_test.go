package container_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"virtbench/drivers"
	"virtbench/drivers/container"
	"virtbench/drivers/drivertest"
	"virtbench/guest"
	"virtbench/guest/containerinit"
	"virtbench/images"
)

// probe runs the probe workload in a container and returns its results by name.
func probe(t *testing.T, env drivers.Env, args ...string) (map[string]guest.Result, drivers.Instance) {
	t.Helper()
	inst := drivertest.Start(t, factory, env, drivers.Spec{ID: "probe", Workload: "probe", Args: args})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := inst.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	rs := map[string]guest.Result{}
	for _, r := range drivertest.Results(t, inst, 30*time.Second) {
		rs[r.Name] = r
	}
	return rs, inst
}

func TestIsolation(t *testing.T) {
	drivertest.RequiresRoot(t)
	env := drivertest.NewEnv(t, drivertest.Options{})
	rs, inst := probe(t, env, "-write", "/etc/probe-file", "-remove", "/etc/hostname")

	if rs["probe.pid"].Value != 1 {
		t.Errorf("workload PID = %v, want 1 (own PID namespace)", rs["probe.pid"].Value)
	}
	if h := rs["probe.hostname"].Detail; h != "probe" {
		t.Errorf("hostname = %q, want the instance's own, probe", h)
	}
	if ifs := rs["probe.interfaces"]; ifs.Value != 1 || ifs.Detail != "lo" {
		t.Errorf("interfaces = %v (%q), want only lo (own network namespace)", ifs.Value, ifs.Detail)
	}
	if rs["probe.no_new_privs"].Value != 1 {
		t.Error("no_new_privs is not set")
	}
	var want uint64
	for _, c := range containerinit.DefaultCaps {
		want |= 1 << c
	}
	// The setup's capabilities reached the init through the inheritable
	// set: none may be left in any set.
	for _, set := range []string{"capeff", "capprm", "capinh", "capbnd"} {
		if got := uint64(rs["probe."+set].Value); got != want {
			t.Errorf("%s %#x, want Docker's default set %#x", set, got, want)
		}
	}
	if rs["probe.write"].Value != 1 || rs["probe.remove"].Value != 1 {
		t.Fatalf("writes inside the container failed: %+v %+v", rs["probe.write"], rs["probe.remove"])
	}

	// The writes went to the instance's layer, never to the shared base.
	root, err := images.BuildRootfs(env.CacheDir, env.Agent, 0)
	if err != nil {
		t.Fatal(err)
	}
	base := root.Dir
	if _, err := os.Stat(filepath.Join(base, "etc/probe-file")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the container wrote the base layer: %v", err)
	}
	if _, err := os.Stat(filepath.Join(base, "etc/hostname")); err != nil {
		t.Errorf("the container removed a file of the base layer: %v", err)
	}
	upper := filepath.Join(env.StateDir, "container-probe", "upper")
	if _, err := os.Stat(filepath.Join(upper, "etc/probe-file")); err != nil {
		t.Errorf("new file not in the writable layer: %v", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(upper, "etc/hostname"), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFCHR || st.Rdev != 0 {
		t.Errorf("removed file is not a whiteout (char 0:0) in the writable layer: %v", err)
	}
	wu, err := inst.(interface{ WritableUsage() (images.Usage, error) }).WritableUsage()
	if err != nil || wu.Apparent == 0 {
		t.Errorf("writable layer usage = %+v, %v; want the probe file counted", wu, err)
	}

	// No mount of the instance is visible on the host, during or after.
	if m := drivertest.MountsUnder(env.StateDir); len(m) > 0 {
		t.Errorf("container mounts visible on the host: %v", m)
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := inst.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	drivertest.CheckNothingLeft(t, env)
	if l := drivertest.CgroupLeaks(env); len(l) > 0 {
		t.Errorf("cgroups left: %v", l)
	}
	if mounts, _ := os.ReadFile("/proc/mounts"); strings.Contains(string(mounts), env.StateDir) {
		t.Error("/proc/mounts mentions the instance after stop")
	}
}

func TestMemoryLimitKills(t *testing.T) {
	drivertest.RequiresRoot(t)
	env := drivertest.NewEnv(t, drivertest.Options{})
	inst := drivertest.Start(t, factory, env, drivers.Spec{ID: "oom", Workload: "alloc", Args: []string{"-size", "268435456"}, MemoryBytes: 32 << 20})
	drivertest.WaitExited(t, inst, 30*time.Second)
	if err := inst.(drivers.Exiter).ExitErr(); err == nil || !strings.Contains(err.Error(), "memory limit") {
		t.Errorf("ExitErr = %v, want it to name the memory limit", err)
	}
	for _, m := range drivertest.Drain(t, inst, 30*time.Second) {
		if m.Kind == guest.KindResult {
			t.Errorf("the workload reported %+v despite the limit", m.Result)
		}
	}
}

func TestCgroupMemory(t *testing.T) {
	drivertest.RequiresRoot(t)
	env := drivertest.NewEnv(t, drivertest.Options{})
	inst := drivertest.Start(t, factory, env, drivers.Spec{ID: "mem", Workload: "alloc", Args: []string{"-size", "33554432"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := inst.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	drivertest.Results(t, inst, 30*time.Second)
	got, err := inst.(drivers.Cgrouper).CgroupMemoryBytes()
	if err != nil || got < 32<<20 || got > 128<<20 {
		t.Errorf("cgroup memory = %d, %v; want about 32 MiB plus the agent", got, err)
	}
}

func TestUserNamespace(t *testing.T) {
	drivertest.RequiresRoot(t)
	env := drivertest.NewEnv(t, drivertest.Options{Options: map[string]string{"userns": "true"}})
	// Let the mapped root reach the test's own state and cache directories.
	for _, d := range []string{env.StateDir, env.CacheDir} {
		for ; strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
			os.Chmod(d, 0o711)
		}
	}
	rs, _ := probe(t, env, "-write", "/tmp/x")
	if rs["probe.pid"].Value != 1 || rs["probe.uid"].Value != 0 || rs["probe.write"].Value != 1 {
		t.Errorf("in a user namespace: pid %v uid %v write %+v; want 1, 0 and a successful write",
			rs["probe.pid"].Value, rs["probe.uid"].Value, rs["probe.write"])
	}
}

func TestOptions(t *testing.T) {
	for _, opts := range []map[string]string{{"userns": "maybe"}, {"pids": "0"}, {"bogus": "1"}} {
		if _, err := container.New(drivers.Env{Options: opts}); err == nil {
			t.Errorf("New with options %v succeeded", opts)
		}
	}
}

// TestBornInCgroup checks that the init is in the instance's cgroup in
// every hierarchy and that no thread of the host process stays there.
func TestBornInCgroup(t *testing.T) {
	drivertest.RequiresRoot(t)
	env := drivertest.NewEnv(t, drivertest.Options{})
	inst := drivertest.Start(t, factory, env, drivers.Spec{ID: "born", Workload: "idle"})
	drivertest.Ready(t, inst, 30*time.Second)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", inst.Processes()[0]))
	if err != nil {
		t.Fatal(err)
	}
	joined := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.HasSuffix(line, "/born") {
			joined++
		}
	}
	want := 1 // cgroup v2: one line
	if strings.Contains(string(b), ":memory:") {
		want = 3 // v1: memory, cpu and pids
	}
	if joined < want {
		t.Errorf("init's cgroups:\n%s\nwant the instance's (…/born) in %d hierarchies", b, want)
	}
	tasks, err := filepath.Glob("/proc/self/task/*/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tasks {
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), "virtbench.") {
			t.Errorf("%s: a host thread stayed in an instance's cgroup:\n%s", f, b)
		}
	}
}

// TestPhases checks that a start reports the host's phases, then every
// step of the init's setup, in order (drivertest.Ready checks they are
// declared and ordered).
func TestPhases(t *testing.T) {
	drivertest.RequiresRoot(t)
	env := drivertest.NewEnv(t, drivertest.Options{})
	inst := drivertest.Start(t, factory, env, drivers.Spec{ID: "phases", Workload: "idle"})
	r := drivertest.Ready(t, inst, 30*time.Second)
	var got []string
	for _, ph := range r.Phases {
		got = append(got, ph.Name)
	}
	want := append([]string{"cgroup", "clone"}, containerinit.Steps...)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("phases %v, want %v", got, want)
	}
}
