package container_test

import (
	"os"
	"testing"

	"virtbench/drivers"
	"virtbench/drivers/container"
	"virtbench/drivers/drivertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	drivertest.CleanupAgent()
	os.Exit(code)
}

func factory(env drivers.Env) (drivers.Driver, error) { return container.New(env) }

func TestConformance(t *testing.T) {
	drivertest.RequiresRoot(t)
	drivertest.Run(t, factory, drivertest.Options{Leaks: drivertest.CgroupLeaks})
}
