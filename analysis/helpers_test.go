package analysis

import (
	"path/filepath"
	"sync"

	"virtbench/internal/results"
)

// quickDir is a saved quick run of every driver (samples.jsonl, env.json
// and run.json with its vocabulary, as virtbench wrote them).
var quickDir = filepath.Join("testdata", "quick")

// testVocab is the saved run's vocabulary: what every driver and
// workload declared when it ran. The analysis links no driver.
var testVocab = sync.OnceValue(func() results.Vocabulary {
	var st results.Status
	if err := results.ReadJSON(quickDir, results.StatusFile, &st); err != nil || st.Vocabulary == nil {
		panic("the saved run's vocabulary: " + err.Error())
	}
	return *st.Vocabulary
})

// idx indexes sums with the saved run's vocabulary.
func idx(sums []results.Summary) *Index { return NewIndex(sums, testVocab()) }

// testRoles returns the roles a run records for variants of these classes
// whose instances carried labels: the first plain process, by name, is
// the baseline.
func testRoles(classes map[string]results.Class, labels map[string]map[string]string) map[string]results.Role {
	out := map[string]results.Role{}
	baseline := ""
	for name, c := range classes {
		if c == results.ClassNone && (baseline == "" || name < baseline) {
			baseline = name
		}
	}
	for name, c := range classes {
		r := results.Role{Class: c, Baseline: name == baseline}
		r.Observe(testVocab(), labels[name])
		out[name] = r
	}
	return out
}

// sumRoles is testRoles with the labels of summaries.
func sumRoles(classes map[string]results.Class, sums []results.Summary) map[string]results.Role {
	labels := map[string]map[string]string{}
	for _, s := range sums {
		if labels[s.Variant] == nil {
			labels[s.Variant] = map[string]string{}
		}
		for k, v := range s.Labels {
			labels[s.Variant][k] = v
		}
	}
	return testRoles(classes, labels)
}

// outcome returns an Outcome whose variants have these roles.
func outcome(roles map[string]results.Role, labels map[string]map[string]string) results.Outcome {
	o := results.Outcome{Labels: labels, Variants: map[string]results.VariantRecord{}}
	for name, r := range roles {
		o.Variants[name] = results.VariantRecord{Role: r}
	}
	return o
}

// testRun is a run of samples with outcome o and the saved run's
// vocabulary.
func testRun(samples []results.Sample, o results.Outcome) *Run {
	v := testVocab()
	return &Run{Status: results.Status{Outcome: o, Vocabulary: &v}, Vocabulary: v, Measurements: results.MeasurementsOf(samples)}
}

// adder returns a function that appends one single-instance sample of
// workload per value to out, reps numbered from 0.
func adder(out *[]results.Sample, workload string) func(variant, metric, unit string, vals ...float64) {
	return func(variant, metric, unit string, vals ...float64) {
		for i, v := range vals {
			*out = append(*out, results.Sample{Variant: variant, Workload: workload, Instances: 1, Rep: i, Metric: metric, Unit: unit, Value: v})
		}
	}
}
