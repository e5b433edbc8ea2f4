package native_test

import (
	"os"
	"testing"

	"virtbench/drivers"
	"virtbench/drivers/drivertest"
	"virtbench/drivers/native"
)

func TestMain(m *testing.M) {
	code := m.Run()
	drivertest.CleanupAgent()
	os.Exit(code)
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(env drivers.Env) (drivers.Driver, error) { return native.New(env.Agent), nil }, drivertest.Options{})
}
