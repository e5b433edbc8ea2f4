package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"virtbench/analysis"
	"virtbench/internal/results"
)

// TestStormOutputs renders a run of start storms, two of whose trials hit
// reps: auto's most: the storm table in every output, its chart, and the
// capped trials named.
func TestStormOutputs(t *testing.T) {
	var samples []results.Sample
	for _, v := range []struct {
		name  string
		start float64
	}{{"runc", 0.03}, {"qemu", 0.2}} {
		for _, n := range []int{1, 8} {
			for rep := range 3 {
				for i := range n {
					samples = append(samples, results.Sample{Variant: v.name, Workload: "idle", Instances: n, Rep: rep, Metric: results.MetricStormStartup, Unit: "sec", Value: v.start * float64(1+i)})
				}
				rate := float64(n) / (v.start * float64(n))
				samples = append(samples,
					results.Sample{Variant: v.name, Workload: "idle", Instances: n, Rep: rep, Metric: results.MetricStormRate, Unit: "inst/s", Value: rate},
					results.Sample{Variant: v.name, Workload: "idle", Instances: n, Rep: rep, Metric: results.MetricStormRatePerCore, Unit: "inst/s/core", Value: rate / 2})
			}
		}
	}
	status := results.Status{Scenario: "storm", State: results.StateCompleted,
		Outcome: results.Outcome{RepsCapped: []string{"qemu idle storm of 8: storm.rate's median known to ±7.0% after 3 repetitions (wanted ±5%)"},
			Variants: map[string]results.VariantRecord{"runc": {Driver: "runc", Role: results.Role{Class: results.ClassOSLevel}}, "qemu": {Driver: "qemu", Role: results.Role{Class: results.ClassVM}}}}}
	a := analysis.Analyze(saveRun(t, samples, status), nil)
	path, err := WriteAll(a)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(path)
	md, _ := os.ReadFile(filepath.Join(a.Run.Dir, MarkdownFile))
	var term bytes.Buffer
	if err := WriteTerminal(&term, a, true); err != nil {
		t.Fatal(err)
	}
	for _, out := range []struct {
		name string
		text string
		want []string
	}{
		{"report.html", string(html), []string{`id="storms"`, "<td class=\"l\">runc</td><td class=\"l\">idle</td><td class=\"l\">8</td><td class=\"l\">135.0ms</td><td class=\"l\">240.0ms</td><td class=\"l\">4.50×</td>", "Firecracker&#39;s demo: 4,000 microVMs in 78 s", `id="reps-capped"`, "qemu idle storm of 8: storm.rate&#39;s median known to ±7.0%", `id="chart-storm-latency"`,
			"Start storms, instances READY per second per host core: runc 16.67 at 8 at once, qemu 2.5 at 8 at once."}},
		{"results.md", string(md), []string{"## Start storms", `| qemu | idle | 8 | 900.0ms | 1.600s | 4.50× | 5 \[5-5\] | 2.5 | 0 of 24 |`, "## Repetitions capped"}},
		{"terminal", term.String(), []string{"  Storm of 8:        p50 135.0ms, p99 240.0ms (4.50× alone); 33.33 READY per second, 16.67 per core", "start storms:", "RunD"}},
	} {
		for _, w := range out.want {
			if !strings.Contains(out.text, w) {
				t.Errorf("%s lacks %q\n%s", out.name, w, grepLines(out.text, "Storm of|qemu | idle|runc</td>"))
			}
		}
	}
	if _, err := os.Stat(filepath.Join(a.Run.Dir, "storm-latency.svg")); err != nil {
		t.Errorf("no storm chart: %v", err)
	}
}

func grepLines(s, re string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, p := range strings.Split(re, "|") {
			if strings.Contains(l, p) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
