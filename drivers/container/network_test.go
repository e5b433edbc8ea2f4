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
