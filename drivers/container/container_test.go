package container_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"virtbench/drivers"
	"virtbench/drivers/container"
	"virtbench/drivers/drivertest"
	"virtbench/guest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	drivertest.CleanupAgent()
	os.Exit(code)
}

func factory(env drivers.Env) (drivers.Driver, error) { return container.New(env) }

func TestConformance(t *testing.T) {
	drivertest.RequiresRoot(t)
	drivertest.Run(t, "container", drivertest.Options{Leaks: drivertest.CgroupLeaks})
}

// TestFailedStartUndoes: a start that fails once the init runs (its
// instance directory cannot be made: a file virtbench did not make is in
// the way) kills the init and removes its cgroup, which the kernel allows
// only once the init is gone, and leaves the file alone.
func TestFailedStartUndoes(t *testing.T) {
	drivertest.RequiresRoot(t)
	env := drivertest.NewEnv(t, drivertest.Options{})
	d, err := container.New(env)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.Check(ctx); err != nil {
		t.Fatal(err)
	}
	blocker := filepath.Join(env.StateDir, "container-undo")
	if err := os.WriteFile(blocker, []byte("not virtbench's"), 0o600); err != nil {
		t.Fatal(err)
	}
	inst, err := d.Start(ctx, drivers.Spec{ID: "undo", Workload: guest.IdleWorkload})
	if err == nil {
		inst.Stop(ctx)
		t.Fatal("Start succeeded with its instance directory taken")
	}
	if b, err := os.ReadFile(blocker); err != nil || string(b) != "not virtbench's" {
		t.Errorf("the file in the way: %q, %v; want it untouched", b, err)
	}
	filepath.WalkDir("/sys/fs/cgroup", func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return filepath.SkipDir
		}
		if e.IsDir() && e.Name() == "undo" && strings.Contains(p, "virtbench."+filepath.Base(env.StateDir)) {
			t.Errorf("the failed instance's cgroup is left: %s", p)
		}
		return nil
	})
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	drivertest.CheckNothingLeft(t, env)
}
