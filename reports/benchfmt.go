package reports

import (
	"fmt"
	"io"
	"runtime"

	"golang.org/x/perf/benchfmt"

	"virtbench/internal/results"
)

// WriteBenchfmt writes every measured (non-warmup, non-failed) sample as one
// line of the Go benchmark format, e.g.
//
//	BenchmarkStartup/driver=native/workload=idle/instances=1 1 0.0021 sec
//
// with the provenance as file configuration, so that benchstat can compare
// two runs.
func WriteBenchfmt(w io.Writer, prov results.Provenance, samples []results.Sample) error {
	bw := benchfmt.NewWriter(w)
	cfg := []benchfmt.Config{
		{Key: "goos", Value: []byte(runtime.GOOS), File: true},
		{Key: "goarch", Value: []byte(runtime.GOARCH), File: true},
		{Key: "cpu", Value: []byte(prov.CPUModel), File: true},
		{Key: "host", Value: []byte(prov.Hostname), File: true},
		{Key: "kernel", Value: []byte(prov.Kernel), File: true},
		{Key: "virtbench", Value: []byte(prov.Virtbench), File: true},
		{Key: "scenario", Value: []byte(prov.Scenario), File: true},
	}
	for _, s := range samples {
		if s.Warmup || s.Failed() {
			continue
		}
		name := fmt.Sprintf("%s/driver=%s/workload=%s/instances=%d", benchName(s.Metric), s.Driver, s.Workload, s.Instances)
		r := &benchfmt.Result{
			Config: cfg,
			Name:   benchfmt.Name(name),
			Iters:  1,
			Values: []benchfmt.Value{{Value: s.Value, Unit: s.Unit}},
		}
		if err := bw.Write(r); err != nil {
			return fmt.Errorf("reports: results.txt: %w", err)
		}
	}
	return nil
}
