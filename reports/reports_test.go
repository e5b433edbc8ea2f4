package reports

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"virtbench/bench"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testSamples is a fixed run: two drivers, startup and memory, a failure.
func testSamples() []bench.Sample {
	var out []bench.Sample
	add := func(driver, metric, unit string, vals ...float64) {
		for i, v := range vals {
			out = append(out, bench.Sample{Driver: driver, Workload: "idle", Instances: 1, Rep: i, Metric: metric, Unit: unit, Value: v})
		}
	}
	add("native", "startup", "sec", 0.0021, 0.0020, 0.0023, 0.0022, 0.0019, 0.0021)
	add("native", "pss", "B", 5.5e6, 5.6e6, 5.5e6, 5.4e6, 5.5e6, 5.5e6)
	add("qemu", "startup", "sec", 3.1, 3.0, 3.2, 2.9, 3.0, 3.1)
	add("qemu", "cpu.sha256", "op/s", 120, 118, 125)
	out = append(out, bench.Sample{Driver: "qemu", Workload: "idle", Instances: 1, Metric: "startup", Unit: "sec", Error: "not ready"})
	out = append(out, bench.Sample{Driver: "qemu", Workload: "idle", Instances: 1, Metric: "startup", Unit: "sec", Value: 99, Warmup: true})
	return out
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reports -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestGolden(t *testing.T) {
	sums := bench.Summarize(testSamples())
	prov := bench.Provenance{Hostname: "h", CPUModel: "cpu", Kernel: "6.1", Virtbench: "v", Scenario: "quick"}
	tests := []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"table.txt", func(b *bytes.Buffer) error { return WriteText(b, sums) }},
		{"table.md", func(b *bytes.Buffer) error { return WriteMarkdown(b, sums) }},
		{"results.csv", func(b *bytes.Buffer) error { return WriteCSV(b, sums) }},
		{"results.txt", func(b *bytes.Buffer) error { return WriteBenchfmt(b, prov, testSamples()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.write(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, b.Bytes())
		})
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v    float64
		unit string
		want string
	}{
		{0.0021, "sec", "2.100ms"},
		{3.1, "sec", "3.100s"},
		{5.5 * (1 << 20), "B", "5.500MiB"},
		{1.2e9, "B/s", "1.118GiB/s"},
		{6012, "op/s", "6.012k op/s"},
		{1.5e-6, "sec/op", "1.500µs/op"},
	}
	for _, tt := range tests {
		if got := FormatValue(tt.v, tt.unit); got != tt.want {
			t.Errorf("FormatValue(%v, %q) = %q, want %q", tt.v, tt.unit, got, tt.want)
		}
	}
}

func TestMetricSeries(t *testing.T) {
	got := MetricSeries(testSamples(), "startup", "")
	if len(got) != 2 || got[0].Label != "native" || len(got[0].Values) != 6 || got[1].Label != "qemu" || len(got[1].Values) != 6 {
		t.Fatalf("MetricSeries = %+v; want native and qemu with 6 values each (no warmup, no failure)", got)
	}
	if got[1].Values[0] != 3.1 {
		t.Errorf("qemu first value %v, want 3.1", got[1].Values[0])
	}
}

func TestCharts(t *testing.T) {
	charts, err := Charts(testSamples())
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]Chart{}
	for _, c := range charts {
		names[c.Name] = c
	}
	st, ok := names["startup"]
	if !ok || names["memory-pss"].Name == "" {
		t.Fatalf("charts %v, want startup and memory-pss", names)
	}
	if !bytes.Contains(st.SVG, []byte("<svg")) || !bytes.Contains(st.SVG, []byte("log scale")) || !bytes.HasPrefix(st.PNG, []byte("\x89PNG")) {
		t.Errorf("startup chart: want an SVG with a log scale (values span 1500×) and a PNG")
	}
	if _, err := BoxChart("x", "x", "x", nil); err == nil {
		t.Error("BoxChart with no data succeeded")
	}
}

func TestWriteAllAndLoad(t *testing.T) {
	dir := t.TempDir()
	store, err := bench.CreateStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range testSamples() {
		if err := store.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()
	status := bench.Status{Scenario: "quick", State: bench.StateCompleted, Started: time.Unix(0, 0).UTC(),
		Outcome: bench.Outcome{Failures: []string{"qemu idle: not ready"}, Skipped: map[string]string{"runc": "not installed"}}}
	if err := bench.WriteJSON(dir, bench.EnvFile, bench.Provenance{Hostname: "h"}); err != nil {
		t.Fatal(err)
	}
	if err := bench.WriteJSON(dir, bench.StatusFile, status); err != nil {
		t.Fatal(err)
	}
	run, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	path, err := WriteAll(run)
	if err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "Median start to READY: native 2.100ms, qemu 3.050s (1452.4× native)", "qemu idle: not ready", "runc: not installed", `id="provenance"`} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if strings.Contains(string(html), "<script") || strings.Contains(string(html), "http://") && !strings.Contains(string(html), "http://www.w3.org") {
		t.Error("report.html is not self-contained")
	}
	for _, f := range []string{SummaryFile, BenchFile, CSVFile, MarkdownFile, "startup.svg", "startup.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	// Regenerating from the raw samples reproduces the same summary.
	first, _ := os.ReadFile(filepath.Join(dir, SummaryFile))
	run2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteAll(run2); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(filepath.Join(dir, SummaryFile))
	if !bytes.Equal(first, second) {
		t.Error("summary.json changed when regenerated from samples.jsonl")
	}
}
