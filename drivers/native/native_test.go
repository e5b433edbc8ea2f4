package native_test

import (
	"os"
	"testing"

	"virtbench/drivers"
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

// TestTools runs fio, iperf3, Redis and nginx from the tools layer's copy
// in the image cache, the servers driven from the host over loopback.
func TestTools(t *testing.T) {
	info, err := drivers.Lookup("native")
	if err != nil {
		t.Fatal(err)
	}
	drivertest.CheckTools(t, info.Factory, drivertest.NewEnv(t, drivertest.Options{}))
}
