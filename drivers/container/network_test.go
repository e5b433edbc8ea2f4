package container_test

import (
	"testing"

	"virtbench/drivers/drivertest"
)

// TestVethNetwork serves HTTP in a container with network=veth and fetches
// from it through the peer namespace; the host's own interfaces never see
// the pair.
func TestVethNetwork(t *testing.T) {
	drivertest.RequiresRoot(t)
	drivertest.CheckNetworkPath(t, factory, drivertest.NewEnv(t, drivertest.Options{Options: map[string]string{"network": "veth"}}))
}

// TestTools runs fio, iperf3, Redis and nginx from the tools layer (an
// overlay lower layer above the rootfs), the servers driven from the host
// over the veth.
func TestTools(t *testing.T) {
	drivertest.RequiresRoot(t)
	drivertest.CheckTools(t, factory, drivertest.NewEnv(t, drivertest.Options{Options: map[string]string{"network": "veth"}}))
}
