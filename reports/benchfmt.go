package reports

import (
	"fmt"
	"io"
	"runtime"

	"golang.org/x/perf/benchfmt"

	"virtbench/analysis"
	"virtbench/internal/results"
	"virtbench/internal/textsafe"
)

// WriteBenchfmt writes every measured value (no warmup, no failure, no
// excluded trial) of a run as one line of the Go benchmark format, e.g.
//
//	BenchmarkStartup/variant=native/workload=idle/instances=1 1 0.0021 sec
//
// series by series, with the provenance as file configuration, so that
// benchstat can compare two runs. Each unit written is preceded by its
// direction, read from the run's vocabulary (benchfmt's "Unit sec
// better=lower"); a metric that improves the other way from the rest of
// its unit is written in a unit of its own (benchUnit).
func WriteBenchfmt(w io.Writer, r *analysis.Run) error {
	prov := r.Provenance
	bw := benchfmt.NewWriter(w)
	cfg := []benchfmt.Config{
		{Key: "goos", Value: []byte(textsafe.Line(runtime.GOOS)), File: true},
		{Key: "goarch", Value: []byte(textsafe.Line(runtime.GOARCH)), File: true},
		{Key: "cpu", Value: []byte(textsafe.Line(prov.CPUModel)), File: true},
		{Key: "host", Value: []byte(textsafe.Line(prov.Hostname)), File: true},
		{Key: "kernel", Value: []byte(textsafe.Line(prov.Kernel)), File: true},
		{Key: "virtbench", Value: []byte(textsafe.Line(prov.Virtbench)), File: true},
		{Key: "scenario", Value: []byte(textsafe.Line(prov.Scenario)), File: true},
	}
	written := map[string]bool{}
	for _, s := range r.Measurements.Series {
		unit, better := benchUnit(r.Vocabulary, s.Metric, s.Unit)
		if !written[unit] && better != "" && len(s.Values) > 0 {
			written[unit] = true
			m := &benchfmt.UnitMetadata{UnitMetadataKey: benchfmt.UnitMetadataKey{Unit: unit, Key: "better"}, OrigUnit: unit, Value: better}
			if err := bw.Write(m); err != nil {
				return fmt.Errorf("reports: results.txt: %w", err)
			}
		}
		name := fmt.Sprintf("%s/variant=%s/workload=%s/instances=%d", benchName(s.Metric), s.Variant, s.Workload, s.Instances)
		for _, v := range s.Values {
			res := &benchfmt.Result{
				Config: cfg,
				Name:   benchfmt.Name(name),
				Iters:  1,
				Values: []benchfmt.Value{{Value: v, Unit: unit}},
			}
			if err := bw.Write(res); err != nil {
				return fmt.Errorf("reports: results.txt: %w", err)
			}
		}
	}
	return nil
}

// higherSuffix qualifies a unit whose metric improves upwards where the
// unit's other metrics improve downwards ("B-higher": bytes KSM saved,
// beside the bytes an instance holds).
const higherSuffix = "-higher"

// benchUnit returns the unit metric is written in and benchfmt's better=
// for it ("higher", "lower", or "" for a metric that improves neither
// way). The unit is the sample's, with higherSuffix where the metric
// improves upwards and another declared metric of that unit downwards:
// a benchfmt unit has one direction. The choice depends on the
// declarations alone, so two runs write a metric in the same unit.
func benchUnit(voc results.Vocabulary, metric, unit string) (string, string) {
	switch voc.Kind(metric).Better {
	case results.LowerIsBetter:
		return unit, "lower"
	case results.HigherIsBetter:
		if voc.UnitImprovesDownwards(unit) {
			return unit + higherSuffix, "higher"
		}
		return unit, "higher"
	}
	return unit, ""
}
