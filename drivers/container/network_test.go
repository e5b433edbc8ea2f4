package container_test

import (
	"context"
	"testing"
	"time"

	"virtbench/drivers"
	"virtbench/drivers/drivertest"
)

// TestVethNetwork serves HTTP in a container with network=veth and fetches
// from it through the peer namespace; the host's own interfaces never see
// the pair.
func TestVethNetwork(t *testing.T) {
	drivertest.RequiresRoot(t)
	before := drivertest.HostLinks(t)
	env := drivertest.NewEnv(t, drivertest.Options{Options: map[string]string{"network": "veth"}})
	inst := drivertest.Start(t, factory, env, drivers.Spec{ID: "net", Workload: "http"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := inst.Ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	drivertest.FetchOverPath(ctx, t, inst, r)
	if after := drivertest.HostLinks(t); after != before {
		t.Errorf("host interfaces changed: %q before, %q while the container runs", before, after)
	}
}
