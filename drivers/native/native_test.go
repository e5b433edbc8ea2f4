package native_test

import (
	"os"
	"testing"

	"virtbench/drivers/drivertest"
	_ "virtbench/drivers/native" // registers the driver the suite runs
)

func TestMain(m *testing.M) {
	code := m.Run()
	drivertest.CleanupAgent()
	os.Exit(code)
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, "native", drivertest.Options{})
}
