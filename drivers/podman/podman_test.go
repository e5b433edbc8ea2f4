package podman_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"virtbench/drivers"
	"virtbench/drivers/drivertest"
	"virtbench/drivers/podman"
)

// TestMain gives the tests one cache, and so one Podman store, and removes
// the store afterwards unless it was there before.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	defer drivertest.CleanupAgent()
	cache := os.Getenv("VIRTBENCH_CACHE")
	if cache == "" {
		dir, err := os.MkdirTemp("", "virtbench-podman-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		cache = dir
		os.Setenv("VIRTBENCH_CACHE", dir)
	}
	if _, err := os.Stat(podman.Store(cache).Root); err == nil {
		return m.Run()
	}
	code := m.Run()
	if err := podman.RemoveStore(cache); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return code
}

func factory(env drivers.Env) (drivers.Driver, error) { return podman.New(env) }

// leaks lists the containers of env's run left in the store, and its
// cgroups.
func leaks(env drivers.Env) []string {
	left := drivertest.CgroupLeaks(env)
	s := podman.Store(env.CacheDir)
	if _, err := os.Stat(s.Root); err != nil {
		return left // no podman command ran
	}
	s.Runtime = "runc"
	out, err := exec.Command("podman", append(s.Args(), "ps", "--all", "--quiet", "--filter", "label="+podman.Label+".run="+filepath.Base(env.StateDir))...).CombinedOutput()
	if err != nil {
		return append(left, err.Error()+": "+string(out))
	}
	return append(left, strings.Fields(string(out))...)
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, "podman", drivertest.Options{ReadyTimeout: time.Minute, Leaks: leaks})
}

func TestFootprint(t *testing.T) {
	env := drivertest.NewEnv(t, drivertest.Options{})
	inst := drivertest.Start(t, factory, env, drivers.Spec{ID: "fp", Workload: "idle"})
	drivertest.Ready(t, inst, time.Minute)
	if pids := inst.Processes(); len(pids) != 2 {
		t.Errorf("processes %v, want the container's init and its conmon", pids)
	}
	d, _ := factory(env)
	u, err := d.(drivers.ImageSizer).ImageUsage()
	if err != nil || u.Apparent < 1<<20 {
		t.Errorf("image usage %+v, %v", u, err)
	}
	// The agent writes nothing while idle: Podman counts the directories
	// its mounts need, a few KiB.
	if w, err := inst.(drivers.WritableSizer).WritableUsage(); err != nil || w.Apparent < 0 || w.Apparent > 1<<20 {
		t.Errorf("writable layer usage %+v, %v", w, err)
	}
}

// TestVethNetwork serves HTTP in a Podman container with network=veth and
// fetches it from virtbench's peer namespace.
func TestVethNetwork(t *testing.T) {
	drivertest.RequiresRoot(t)
	drivertest.CheckNetworkPath(t, factory, drivertest.NewEnv(t, drivertest.Options{Options: map[string]string{"network": "veth"}}))
}
