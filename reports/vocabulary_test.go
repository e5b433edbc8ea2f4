package reports

import (
	"virtbench/internal/results"

	// The drivers' labels and the workloads' results, declared as every
	// program that reports a run declares them.
	_ "virtbench/drivers/all"
)

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
		r.Observe(labels[name])
		out[name] = r
	}
	return out
}

// sumRoles is testRoles with the labels of summaries.
func sumRoles(classes map[string]results.Class, sums []results.Summary) map[string]results.Role {
	labels := map[string]map[string]string{}
	for _, s := range sums {
		if labels[s.Driver] == nil {
			labels[s.Driver] = map[string]string{}
		}
		for k, v := range s.Labels {
			labels[s.Driver][k] = v
		}
	}
	return testRoles(classes, labels)
}

// testOutcome is the outcome of testSamples' run: native the baseline,
// qemu a VM.
func testOutcome() results.Outcome {
	return outcome(testRoles(map[string]results.Class{"native": results.ClassNone, "qemu": results.ClassVM}, nil), nil)
}

// outcome returns an Outcome whose variants have these roles.
func outcome(roles map[string]results.Role, labels map[string]map[string]string) results.Outcome {
	o := results.Outcome{Labels: labels, Variants: map[string]results.VariantRecord{}}
	for name, r := range roles {
		o.Variants[name] = results.VariantRecord{Role: r}
	}
	return o
}
