package all_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"virtbench/drivers"
	_ "virtbench/drivers/all"
)

// TestEveryDriverConformance fails for a registered driver whose package's
// tests do not run the conformance suite on it through the registry
// (drivertest.Run(t, "NAME", …)): a driver cannot be registered, and so
// offered to every scenario, without passing the suite.
func TestEveryDriverConformance(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "*", "*_test.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no driver tests found beside drivers/all: %v", err)
	}
	var src strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	for _, info := range drivers.Drivers() {
		if call := "drivertest.Run(t, " + strconv.Quote(info.Name) + ","; !strings.Contains(src.String(), call) {
			t.Errorf("driver %s is registered, but no driver test calls %s…)", info.Name, call)
		}
	}
}
