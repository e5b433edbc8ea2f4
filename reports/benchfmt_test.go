package reports

import (
	"bytes"
	"maps"
	"testing"

	"golang.org/x/perf/benchfmt"

	"virtbench/internal/results"
)

// TestBenchfmtDirections: results.txt says each unit's direction as
// declared, and a metric that improves upwards in a unit that otherwise
// improves downwards (bytes KSM saved beside PSS) gets a unit of its own,
// as benchfmt's reader sees it.
func TestBenchfmtDirections(t *testing.T) {
	var samples []results.Sample
	for _, s := range []struct{ metric, unit string }{
		{results.MetricPSS, "B"}, {results.MetricKSMSaved, "B"}, {results.MetricDensityReached, "instances"},
		{results.MetricStartup, "sec"}, {results.MetricDensityFloor, "B"},
	} {
		samples = append(samples, results.Sample{Variant: "qemu", Workload: "idle", Instances: 1, Metric: s.metric, Unit: s.unit, Value: 1})
	}
	var b bytes.Buffer
	if err := WriteBenchfmt(&b, testAnalysis(t, samples, results.Outcome{}).Run); err != nil {
		t.Fatal(err)
	}
	r := benchfmt.NewReader(&b, "results.txt")
	units := map[string]string{}
	for r.Scan() {
		if res, ok := r.Result().(*benchfmt.Result); ok {
			units[string(res.Name)] = res.Values[0].Unit
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	better := map[string]string{}
	for k, m := range r.Units() {
		if k.Key == "better" {
			better[k.Unit] = m.Value
		}
	}
	want := map[string]string{"B": "lower", "B" + higherSuffix: "higher", "instances": "higher", "sec": "lower"}
	if !maps.Equal(better, want) {
		t.Errorf("better= per unit %v, want %v", better, want)
	}
	if u := units["KsmSavedPerInst/variant=qemu/workload=idle/instances=1"]; u != "B"+higherSuffix {
		t.Errorf("bytes KSM saved written in %q (units %v)", u, units)
	}
}
