package container_test

import (
	"context"
	"testing"
	"time"

	"virtbench/drivers"
	"virtbench/drivers/drivertest"
)

// TestDebianImage runs the agent on the Debian root filesystem (built once
// with debootstrap from Debian's archive, then cached).
func TestDebianImage(t *testing.T) {
	drivertest.RequiresRoot(t)
	env := drivertest.NewEnv(t, drivertest.Options{Options: map[string]string{"image": "debian"}})
	inst := drivertest.Start(t, factory, env, drivers.Spec{ID: "deb", Workload: "probe", Args: []string{"-write", "/etc/probe"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := inst.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	rs := drivertest.Results(t, inst, time.Minute)
	var pid1, wrote bool
	for _, r := range rs {
		pid1 = pid1 || (r.Name == "probe.pid" && r.Value == 1)
		wrote = wrote || (r.Name == "probe.write" && r.Value == 1)
	}
	if !pid1 || !wrote {
		t.Errorf("probe on Debian: %+v", rs)
	}
	d, _ := factory(env)
	u, err := d.(drivers.ImageSizer).ImageUsage()
	if err != nil || u.Allocated < 50<<20 {
		t.Errorf("Debian image usage %+v, %v: want a full distribution's tens of MiB", u, err)
	}
}
