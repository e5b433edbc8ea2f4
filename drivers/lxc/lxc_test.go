package lxc_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"virtbench/drivers"
	"virtbench/drivers/drivertest"
	"virtbench/drivers/lxc"
	"virtbench/drivers/state"
)

func TestMain(m *testing.M) {
	code := m.Run()
	drivertest.CleanupAgent()
	os.Exit(code)
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
