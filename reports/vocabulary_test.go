package reports

import (
	"path/filepath"
	"testing"

	"virtbench/analysis"
	"virtbench/internal/results"
)

// quickDir is a saved quick run of every driver (samples.jsonl, env.json
// and run.json with its vocabulary, as virtbench wrote them), which the
// analysis' tests share.
var quickDir = filepath.Join("..", "analysis", "testdata", "quick")

// testVocabulary returns the saved run's vocabulary: what every driver
// and workload declared when it ran. The reports link no driver.
func testVocabulary(t testing.TB) results.Vocabulary {
	t.Helper()
	var st results.Status
	if err := results.ReadJSON(quickDir, results.StatusFile, &st); err != nil || st.Vocabulary == nil {
		t.Fatalf("the saved run's vocabulary: %v", err)
	}
	return *st.Vocabulary
}

// testRoles returns the roles a run records for variants of these classes
// whose instances carried labels: the first plain process, by name, is
// the baseline.
func testRoles(t testing.TB, classes map[string]results.Class, labels map[string]map[string]string) map[string]results.Role {
	out := map[string]results.Role{}
	baseline := ""
	for name, c := range classes {
		if c == results.ClassNone && (baseline == "" || name < baseline) {
			baseline = name
		}
	}
	for name, c := range classes {
		r := results.Role{Class: c, Baseline: name == baseline}
		r.Observe(testVocabulary(t), labels[name])
		out[name] = r
	}
	return out
}

// testOutcome is the outcome of testSamples' run: native the baseline,
// qemu a VM.
func testOutcome(t testing.TB) results.Outcome {
	return outcome(testRoles(t, map[string]results.Class{"native": results.ClassNone, "qemu": results.ClassVM}, nil), nil)
}

// outcome returns an Outcome whose variants have these roles.
func outcome(roles map[string]results.Role, labels map[string]map[string]string) results.Outcome {
	o := results.Outcome{Labels: labels, Variants: map[string]results.VariantRecord{}}
	for name, r := range roles {
		o.Variants[name] = results.VariantRecord{Role: r}
	}
	return o
}

// testAnalysis analyses samples as a run with outcome o would have
// recorded them, with the saved run's vocabulary.
func testAnalysis(t testing.TB, samples []results.Sample, o results.Outcome) *analysis.Analysis {
	t.Helper()
	v := testVocabulary(t)
	r := &analysis.Run{Status: results.Status{Outcome: o, Vocabulary: &v}, Vocabulary: v, Measurements: results.MeasurementsOf(samples)}
	return analysis.Analyze(r, nil)
}
