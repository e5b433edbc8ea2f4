package lxc_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"virtbench/drivers"
	"virtbench/drivers/drivertest"
	"virtbench/drivers/lxc"
	"virtbench/drivers/state"
)

// TestMain gives the tests one cache when none is set, so that the Debian
// base of the system containers is made once, not once per test.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	defer drivertest.CleanupAgent()
	if os.Getenv("VIRTBENCH_CACHE") == "" {
		dir, err := os.MkdirTemp("", "virtbench-lxc-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		os.Setenv("VIRTBENCH_CACHE", dir)
	}
	return m.Run()
}

func factory(env drivers.Env) (drivers.Driver, error) { return lxc.New(env) }

// leaks lists the run's cgroups left behind, and LXC's lock directories
// for its instances.
func leaks(env drivers.Env) []string {
	left := drivertest.CgroupLeaks(env)
	if _, err := os.Stat(filepath.Join(state.LXCLockRoot, env.StateDir)); err == nil {
		left = append(left, "LXC lock directory "+filepath.Join(state.LXCLockRoot, env.StateDir))
	}
	return left
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, "lxc", drivertest.Options{ReadyTimeout: time.Minute, Leaks: leaks})
}

func TestFootprint(t *testing.T) {
	env := drivertest.NewEnv(t, drivertest.Options{})
	inst := drivertest.Start(t, factory, env, drivers.Spec{ID: "fp", Workload: "idle"})
	drivertest.Ready(t, inst, time.Minute)
	// lxc-execute's monitor, LXC's init in the container, the agent
	if pids := inst.Processes(); len(pids) != 3 {
		t.Errorf("processes %v, want the monitor, LXC's init and the agent", pids)
	}
}

// TestVethNetwork serves HTTP in an LXC container with network=veth and
// fetches it from virtbench's peer namespace.
func TestVethNetwork(t *testing.T) {
	drivertest.RequiresRoot(t)
	drivertest.CheckNetworkPath(t, factory, drivertest.NewEnv(t, drivertest.Options{Options: map[string]string{"network": "veth"}}))
}

// TestSystemContainer boots the Debian image's systemd in a system
// container and runs a workload in the agent's service: the full-OS
// counterpart of qemu's image=debian.
func TestSystemContainer(t *testing.T) {
	drivertest.RequiresRoot(t)
	env := drivertest.NewEnv(t, drivertest.Options{Options: map[string]string{"image": "debian"}})
	t.Cleanup(func() {
		if l := leaks(env); len(l) > 0 {
			t.Errorf("left behind: %v", l)
		}
	})
	inst := drivertest.Start(t, factory, env, drivers.Spec{ID: "debian", Workload: "cpu", Args: []string{"-ops", "10"}})
	r := drivertest.Ready(t, inst, 2*time.Minute)
	if r.Labels["image"] != "debian" {
		t.Errorf("labels %v, want image=debian", r.Labels)
	}
	// lxc-start's monitor, systemd, journald and the rest of a booted
	// system, and the agent: more than an application container's three.
	if pids := inst.Processes(); len(pids) < 4 {
		t.Errorf("processes %v, want a booted system's", pids)
	}
	if rs := drivertest.Results(t, inst, time.Minute); len(rs) != 1 || rs[0].Name != "cpu.sha256" {
		t.Errorf("results %+v", rs)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := inst.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("system container: startup %v, stop %v", r.Startup(), time.Since(start))
	d, _ := factory(env)
	if u, err := d.(drivers.ImageSizer).ImageUsage(); err != nil || u.Allocated < 50<<20 {
		t.Errorf("Debian image usage %+v, %v: want a full distribution's tens of MiB", u, err)
	}
}
