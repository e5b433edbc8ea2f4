package runc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"virtbench/drivers"
	"virtbench/drivers/drivertest"
	"virtbench/drivers/runc"
	"virtbench/internal/required"
)

func TestMain(m *testing.M) {
	code := m.Run()
	drivertest.CleanupAgent()
	os.Exit(code)
}

func TestConformanceRunc(t *testing.T) {
	drivertest.RequiresRoot(t)
	drivertest.Run(t, func(env drivers.Env) (drivers.Driver, error) { return runc.New("runc", env) }, drivertest.Options{Leaks: drivertest.CgroupLeaks})
}

func TestConformanceCrun(t *testing.T) {
	drivertest.RequiresRoot(t)
	factory := func(env drivers.Env) (drivers.Driver, error) { return runc.New("crun", env) }
	if _, err := os.Stat("/sys/fs/cgroup/unified"); err == nil {
		// A hybrid cgroup host: crun 1.8 refuses it, and the driver must
		// say so instead of failing later.
		env := drivertest.NewEnv(t, drivertest.Options{})
		d, _ := factory(env)
		err := d.Check(context.Background())
		if err == nil {
			t.Log("crun accepts this hybrid cgroup host; running the suite")
		} else {
			if !errors.Is(err, drivers.ErrUnavailable) || !strings.Contains(err.Error(), "hybrid") {
				t.Fatalf("crun on a hybrid cgroup host: Check = %v, want ErrUnavailable naming hybrid mode", err)
			}
			drivertest.CheckNothingLeft(t, env)
			required.Skip(t, "crun", fmt.Sprintf("crun refuses hybrid cgroups on this host (%v); the suite runs on a pure cgroup v1 or v2 host", err))
		}
	}
	drivertest.Run(t, factory, drivertest.Options{Leaks: drivertest.CgroupLeaks})
}

// TestVethNetwork serves HTTP in a runc container with network=veth (a
// namespace virtbench made, joined by path) and fetches it from the peer.
func TestVethNetwork(t *testing.T) {
	drivertest.RequiresRoot(t)
	if _, err := exec.LookPath("runc"); err != nil {
		required.Skip(t, "runc", "runc is not installed: apt-get install runc")
	}
	runcFactory := func(env drivers.Env) (drivers.Driver, error) { return runc.New("runc", env) }
	drivertest.CheckNetworkPath(t, runcFactory, drivertest.NewEnv(t, drivertest.Options{Options: map[string]string{"network": "veth"}}))
}
