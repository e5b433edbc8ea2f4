package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"virtbench/analysis"
	"virtbench/internal/results"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// adder returns a function that appends one single-instance sample of
// workload per value to out, reps numbered from 0.
func adder(out *[]results.Sample, workload string) func(driver, metric, unit string, vals ...float64) {
	return func(driver, metric, unit string, vals ...float64) {
		for i, v := range vals {
			*out = append(*out, results.Sample{Variant: driver, Workload: workload, Instances: 1, Rep: i, Metric: metric, Unit: unit, Value: v})
		}
	}
}

// testSamples is a fixed run: two drivers, startup and memory, a failure.
func testSamples() []results.Sample {
	var out []results.Sample
	add := adder(&out, "idle")
	add("native", "startup", "sec", 0.0021, 0.0020, 0.0023, 0.0022, 0.0019, 0.0021)
	add("native", "pss", "B", 5.5e6, 5.6e6, 5.5e6, 5.4e6, 5.5e6, 5.5e6)
	add("qemu", "startup", "sec", 3.1, 3.0, 3.2, 2.9, 3.0, 3.1)
	add("qemu", "cpu.sha256", "op/s", 120, 118, 125)
	add("native", "cpu.sha256", "op/s", 6000, 6100, 5900)
	add("qemu", "phase.vmm", "sec", 0.1, 0.1, 0.1, 0.1, 0.1, 0.1)
	add("qemu", "guest_boot", "sec", 2.5, 2.5, 2.5, 2.5, 2.5, 2.5)
	add("qemu", "guest_uptime", "sec", 2.0, 2.0, 2.0, 2.0, 2.0, 2.0)
	out = append(out, results.Sample{Variant: "qemu", Workload: "idle", Instances: 1, Metric: "startup", Unit: "sec", Error: "not ready"})
	out = append(out, results.Sample{Variant: "qemu", Workload: "idle", Instances: 1, Metric: "startup", Unit: "sec", Value: 99, Warmup: true})
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
	a := testAnalysis(t, testSamples(), testOutcome(t))
	a.Run.Provenance = results.Provenance{Hostname: "h", CPUModel: "cpu", Kernel: "6.1", Virtbench: "v", Scenario: "quick"}
	tests := []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"table.txt", func(b *bytes.Buffer) error { return WriteText(b, a.Index) }},
		{"table.md", func(b *bytes.Buffer) error { return WriteMarkdown(b, a.Index) }},
		{"results.csv", func(b *bytes.Buffer) error { return WriteCSV(b, a.Index.Summaries) }},
		{"results.txt", func(b *bytes.Buffer) error { return WriteBenchfmt(b, a.Run) }},
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

func TestMetricSeries(t *testing.T) {
	got := MetricSeries(results.MeasurementsOf(testSamples()), "startup")
	if len(got) != 2 || got[0].Label != "native" || len(got[0].Values) != 6 || got[1].Label != "qemu" || len(got[1].Values) != 6 {
		t.Fatalf("MetricSeries = %+v; want native and qemu with 6 values each (no warmup, no failure)", got)
	}
	if got[1].Values[0] != 3.1 {
		t.Errorf("qemu first value %v, want 3.1", got[1].Values[0])
	}
}

func TestCharts(t *testing.T) {
	charts, err := Charts(testAnalysis(t, testSamples(), testOutcome(t)))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]Chart{}
	for _, c := range charts {
		names[c.Name] = c
	}
	st, ok := names["startup"]
	for _, want := range []string{"startup", "memory", "startup-phases", "perf-ratio"} {
		if _, ok := names[want]; !ok {
			var have []string
			for n := range names {
				have = append(have, n)
			}
			t.Errorf("no %s chart; have %v", want, have)
		}
	}
	if !ok {
		t.FailNow()
	}
	if !bytes.Contains(st.SVG, []byte("<svg")) || !bytes.Contains(st.SVG, []byte("log scale")) || !bytes.HasPrefix(st.PNG, []byte("\x89PNG")) {
		t.Errorf("startup chart: want an SVG with a log scale (values span 1500×) and a PNG")
	}
	if _, err := BoxChart("x", "x", "x", "", nil); err == nil {
		t.Error("BoxChart with no data succeeded")
	}
}

// saveRun writes a run directory of samples and status, with the saved
// run's vocabulary, and loads it back.
func saveRun(t *testing.T, samples []results.Sample, status results.Status) *analysis.Run {
	t.Helper()
	dir := t.TempDir()
	store, err := results.CreateStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if err := store.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()
	v := testVocabulary(t)
	status.Vocabulary = &v
	if err := results.WriteJSON(dir, results.EnvFile, results.Provenance{Hostname: "h"}); err != nil {
		t.Fatal(err)
	}
	if err := results.WriteJSON(dir, results.StatusFile, status); err != nil {
		t.Fatal(err)
	}
	run, err := analysis.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func TestWriteAllAndLoad(t *testing.T) {
	status := results.Status{Scenario: "quick", State: results.StateCompleted, Started: time.Unix(0, 0).UTC(),
		SharedWith: []string{"PID 42 writing /r/other"},
		Outcome: results.Outcome{Failures: []string{"qemu idle: not ready"}, Skipped: map[string]string{"runc": "not installed"},
			Variants: map[string]results.VariantRecord{"native": {Driver: "native", Role: results.Role{Class: results.ClassNone, Baseline: true}},
				"qemu": {Driver: "qemu", Role: results.Role{Class: results.ClassVM}}}}}
	run := saveRun(t, testSamples(), status)
	dir := run.Dir
	path, err := WriteAll(analysis.Analyze(run, nil))
	if err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "Median start to READY: native 2.100ms, qemu 3.050s (1452.4× native, 3.048s more, 1.22× its guest boot)", "qemu idle: not ready", "runc: not installed", `id="provenance"`, `id="ratios"`, "shared the host with other virtbench runs (PID 42 writing /r/other)", `id="capacity"`, "<td class=\"l\">cpu.sha256</td><td>0.020</td>"} {
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
	run2, err := analysis.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteAll(analysis.Analyze(run2, nil)); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(filepath.Join(dir, SummaryFile))
	if !bytes.Equal(first, second) {
		t.Error("summary.json changed when regenerated from samples.jsonl")
	}
}

// index indexes samples' summaries, with the saved run's vocabulary.
func index(t testing.TB, samples []results.Sample) *analysis.Index {
	v := testVocabulary(t)
	return analysis.NewIndex(results.Summarize(samples, v), v)
}

func TestBarsData(t *testing.T) {
	ph := PhaseBars(index(t, testSamples()))
	if len(ph.Labels) != 1 || ph.Labels[0] != "qemu" {
		t.Fatalf("phase labels %v, want only qemu (native reports no phases)", ph.Labels)
	}
	// qemu: 3.05s = 0.1 VMM + 2.5 guest boot (not the 2.0 s kernel uptime) + 0.45 agent.
	if v, g, a := ph.Series[0].Values[0], ph.Series[1].Values[0], ph.Series[2].Values[0]; v != 0.1 || g != 2.5 || math.Abs(a-0.45) > 1e-9 {
		t.Errorf("qemu phases %v %v %v", v, g, a)
	}
	// Every variant with phases, each part's share of its start.
	var more []results.Sample
	add := adder(&more, "idle")
	add("native", "startup", "sec", 0.010, 0.010, 0.010)
	add("native", "phase.exec", "sec", 0.002, 0.002, 0.002)
	add("docker", "startup", "sec", 0.5, 0.5, 0.5)
	add("docker", "phase.create", "sec", 0.2, 0.2, 0.2)
	add("docker", "phase.runtime", "sec", 0.2, 0.2, 0.2)
	sh := PhaseShares(PhaseBars(index(t, append(testSamples(), more...))))
	if strings.Join(sh.Labels, ",") != "native (2.200ms),qemu (3.050s),docker (500.0ms)" {
		t.Errorf("phase labels %v", sh.Labels)
	}
	for j := range sh.Labels {
		total := 0.0
		for _, s := range sh.Series {
			total += s.Values[j]
		}
		if math.Abs(total-100) > 1e-9 {
			t.Errorf("%s: shares add up to %v%%", sh.Labels[j], total)
		}
	}
	if got := sh.Series[0]; got.Name != "engine create (docker)" || math.Abs(got.Values[2]-40) > 1e-9 {
		t.Errorf("docker's create share %+v, want 40%%", got)
	}
	// The VM's boot stages on the vCPU time line, a missing milestone's
	// time in the next stage.
	var boot []results.Sample
	addb := adder(&boot, "idle")
	addb("qemu", "guest_boot", "sec", 2.0, 2.0, 2.0)
	addb("qemu", "boot_kernel", "sec", 0.5, 0.5, 0.5)
	addb("qemu", "boot_initramfs", "sec", 1.2, 1.2, 1.2)
	addb("qemu", "boot_init", "sec", 1.5, 1.5, 1.5)
	bb := BootBars(index(t, boot))
	var stages []float64
	for _, s := range bb.Series {
		stages = append(stages, s.Values[0])
	}
	if len(bb.Labels) != 1 || !slices.EqualFunc(stages, []float64{0.5, 0, 0.7, 0.3, 0, 0.5}, func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }) {
		t.Errorf("boot stages %v of %v, want 0.5 0 0.7 0.3 0 0.5", stages, bb.Labels)
	}
	pf := PerfBars(analysis.PerfRatios(results.MeasurementsOf(testSamples()), testVocabulary(t), "native"))
	if len(pf.Labels) != 1 || pf.Labels[0] != "cpu.sha256" || len(pf.Series) != 1 || pf.Series[0].Name != "qemu" {
		t.Fatalf("perf bars %+v", pf)
	}
	if r := pf.Series[0].Values[0]; math.Abs(r-120.0/6000) > 1e-9 {
		t.Errorf("qemu/native cpu ratio %v, want 0.02", r)
	}
	disk := DiskBars(index(t, []results.Sample{
		{Variant: "container", Workload: "image", Instances: 1, Metric: results.MetricImageAllocated, Unit: "B", Value: 3e6},
		{Variant: "container", Workload: "idle", Instances: 1, Metric: results.MetricWritableAllocated, Unit: "B", Value: 4096},
	}), 10)
	if len(disk.Labels) != 1 || disk.Series[0].Values[0] != 3e6 || disk.Series[1].Values[0] != 40960 {
		t.Errorf("disk bars %+v, want the image once and 10 writable layers", disk)
	}
	withTools := DiskBars(index(t, []results.Sample{
		{Variant: "container", Workload: "image", Instances: 1, Metric: results.MetricImageAllocated, Unit: "B", Value: 3e6},
		{Variant: "container", Workload: "image", Instances: 1, Metric: results.MetricToolsAllocated, Unit: "B", Value: 9e7},
		{Variant: "container", Workload: "fio", Instances: 1, Metric: results.MetricWritableAllocated, Unit: "B", Value: 4096},
	}), 10)
	if len(withTools.Series) != 3 || withTools.Series[1].Values[0] != 9e7 || withTools.Series[2].Values[0] != 40960 {
		t.Errorf("disk bars %+v, want the image and the tools layer once and 10 writable layers", withTools)
	}
}

func TestDensityCharts(t *testing.T) {
	var samples []results.Sample
	for _, n := range []int{4, 1, 2} {
		samples = append(samples,
			results.Sample{Variant: "container", Workload: "idle", Instances: n, Metric: results.MetricDensityPSS, Unit: "B", Value: float64(1000 * n)},
			results.Sample{Variant: "container", Workload: "idle", Instances: n, Metric: results.MetricDensityMemDrop, Unit: "B", Value: float64(1500 * n)},
			results.Sample{Variant: "container", Workload: "idle", Instances: n, Metric: results.MetricDensityAvailable, Unit: "B", Value: float64(1e9 - n)},
			results.Sample{Variant: "container", Workload: "idle", Instances: n, Metric: results.MetricDensityStartup, Unit: "sec", Value: 0.01})
	}
	samples = append(samples, results.Sample{Variant: "container", Workload: "idle", Metric: results.MetricDensityFloor, Unit: "B", Value: 5e8})
	x := index(t, samples)
	curves := DensityCurves(x, results.MetricDensityPSS)
	if len(curves) != 1 || len(curves[0].XY) != 3 || curves[0].XY[0].X != 1 || curves[0].XY[2].Y != 4000 {
		t.Fatalf("curves %+v, want one curve sorted by instance count", curves)
	}
	if f := densityFloor(x); f != 5e8 {
		t.Errorf("floor %v", f)
	}
	charts, err := densityCharts(x, nil)
	if err != nil || len(charts) != 3 {
		t.Fatalf("density charts: %d, %v", len(charts), err)
	}
	cpu := append(samples, results.Sample{Variant: "container", Workload: "idle", Instances: 4, Metric: results.MetricDensityCPU, Unit: "cores", Value: 0.01})
	if all, err := densityCharts(index(t, cpu), nil); err != nil || len(all) != 4 || all[3].Name != "density-cpu" {
		t.Errorf("density charts with CPU figures: %d, %v; want a fourth, density-cpu", len(all), err)
	}
	if !bytes.Contains(charts[1].SVG, []byte("memory floor")) {
		t.Error("the MemAvailable chart does not mark the memory floor")
	}
}

func TestPerfRatios(t *testing.T) {
	var samples []results.Sample
	add := adder(&samples, "w")
	add("native", "mem.copy", "B/s", 10, 10, 10, 10, 10, 10)
	add("container", "mem.copy", "B/s", 10, 10, 10, 10, 10, 10)
	add("native", "syscall.getppid", "sec/op", 1, 1, 1, 1, 1, 1)
	add("qemu", "syscall.getppid", "sec/op", 4, 4, 4, 4, 4, 4)
	add("native", "cpu.sha256", "op/s", 100, 101, 99)
	add("qemu", "cpu.sha256", "op/s", 10, 12, 8)
	add("qemu", "mem.vmm_overhead", "B", 5, 5, 5) // a size, not a speed
	add("native", "mem.vmm_overhead", "B", 1, 1, 1)
	got := map[string]analysis.Ratio{}
	for _, r := range analysis.PerfRatios(results.MeasurementsOf(samples), testVocabulary(t), "native") {
		got[r.Variant+" "+r.Metric] = r
	}
	want := []struct {
		key           string
		value, lo, hi float64
		same          bool
	}{
		{"container mem.copy", 1, 1, 1, true},
		{"qemu syscall.getppid", 0.25, 0.25, 0.25, false}, // a time: native/driver
		{"qemu cpu.sha256", 0.1, 8.0 / 101, 12.0 / 99, false},
	}
	if len(got) != len(want) {
		t.Errorf("ratios %v, want %d (sizes left out)", got, len(want))
	}
	for _, w := range want {
		r, ok := got[w.key]
		if !ok {
			t.Errorf("no ratio for %s", w.key)
			continue
		}
		if math.Abs(r.Value-w.value) > 1e-9 || math.Abs(r.Lo-w.lo) > 1e-9 || math.Abs(r.Hi-w.hi) > 1e-9 {
			t.Errorf("%s: %.4f [%.4f, %.4f], want %.4f [%.4f, %.4f]", w.key, r.Value, r.Lo, r.Hi, w.value, w.lo, w.hi)
		}
		if w.key != "qemu cpu.sha256" && r.Same != w.same { // 3 values each: too few for the test to decide
			t.Errorf("%s: same as native = %v (p=%.3f), want %v", w.key, r.Same, r.P, w.same)
		}
	}
}

// TestBoxQuartilesMatchTables checks that a chart's box shows the
// quartiles of the tables (type 7), not gonum's Tukey hinges: for
// 1..6 these are 2.25 and 4.75, the hinges 2 and 5.
func TestBoxQuartilesMatchTables(t *testing.T) {
	b, err := plotter.NewBoxPlot(vg.Points(30), 0, plotter.Values{6, 1, 5, 2, 4, 3})
	if err != nil {
		t.Fatal(err)
	}
	tableQuartiles(b)
	if b.Quartile1 != 2.25 || b.Quartile3 != 4.75 || b.Median != 3.5 || b.AdjLow != 1 || b.AdjHigh != 6 || len(b.Outside) != 0 {
		t.Errorf("box %v-%v-%v, whiskers %v-%v, outside %v; want 2.25-3.5-4.75, 1-6, none", b.Quartile1, b.Median, b.Quartile3, b.AdjLow, b.AdjHigh, b.Outside)
	}
}

// TestLogTicks: log axes are labelled at 1-2-5 steps in the axis's unit,
// bytes at powers of two, without trailing zeros.
func TestLogTicks(t *testing.T) {
	labels := func(unit string, lo, hi float64) []string {
		var out []string
		for _, tk := range logTicks(unit).Ticks(lo, hi) {
			if tk.Label != "" {
				out = append(out, tk.Label)
			}
		}
		return out
	}
	if got := strings.Join(labels("sec", 0.008, 0.3), " "); got != "10ms 20ms 50ms 100ms 200ms" {
		t.Errorf("seconds ticks %q", got)
	}
	if got := strings.Join(labels("B", 3<<20, 300<<20), " "); got != "4MiB 8MiB 16MiB 32MiB 64MiB 128MiB 256MiB" {
		t.Errorf("byte ticks %q", got)
	}
	if got := strings.Join(labels("", 1, 1000), " "); got != "1 2 5 10 20 50 100 200 500 1000" {
		t.Errorf("count ticks %q", got)
	}
}

// TestGoldenRun renders a saved quick run (analysis/testdata/quick: its
// samples.jsonl, env.json and run.json as virtbench wrote them, with the
// vocabulary the run recorded) into what a user and a dashboard read:
// claims.json, capacity.json, the terminal summary and a comparison with
// a slower copy of itself, linking no driver. A change to the analysis
// that moves any figure or verdict shows here; cmd/virtbench's
// TestGoldenRunLinked renders the same files with every driver linked and
// compares them with the same goldens.
func TestGoldenRun(t *testing.T) {
	run, err := analysis.Load(quickDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Warnings) > 0 {
		t.Errorf("warnings loading the saved run: %q", run.Warnings)
	}
	a := analysis.Analyze(run, nil)
	for name, v := range map[string]any{"quick.claims.json": a.Claims, "quick.capacity.json": capacityViews(a.Capacity)} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		golden(t, name, append(b, '\n'))
	}
	var term bytes.Buffer
	if err := WriteTerminal(&term, a, false); err != nil {
		t.Fatal(err)
	}
	golden(t, "quick.terminal.txt", term.Bytes())
	samples, err := results.ReadSamples(filepath.Join(quickDir, results.SamplesFile), run.Vocabulary)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range samples {
		if s.Metric == results.MetricStartup && s.Variant == "container" {
			samples[i].Value *= 1.5
		}
	}
	slower := &analysis.Run{Provenance: run.Provenance, Vocabulary: run.Vocabulary, Measurements: results.MeasurementsOf(samples)}
	slower.Provenance.Hostname = "slower"
	var cmp bytes.Buffer
	if err := WriteCompare(&cmp, analysis.Compare([]*analysis.Run{run, slower})); err != nil {
		t.Fatal(err)
	}
	golden(t, "quick.compare.txt", cmp.Bytes())
}

// TestExpositionGolden writes the saved quick run for Prometheus and as
// OpenMetrics, compares three families of each (a summary, a signed
// metric's gauges and a workload's speed) with their golden files and
// parses the whole back with expfmt: every family parses, and native's
// median start comes back in seconds with its labels, as the summaries
// have it.
func TestExpositionGolden(t *testing.T) {
	run, err := analysis.Load(quickDir)
	if err != nil {
		t.Fatal(err)
	}
	a := analysis.Analyze(run, nil)
	want := a.Index.Median("native", results.MetricStartup)
	for name, format := range map[string]expfmt.Format{"quick.prom": FormatPrometheus, "quick.om": FormatOpenMetrics} {
		var b bytes.Buffer
		if err := WriteExposition(&b, a, format); err != nil {
			t.Fatal(err)
		}
		var kept []string
		for _, line := range strings.SplitAfter(b.String(), "\n") {
			for _, f := range []string{"virtbench_startup_", "virtbench_host_mem_drop_", "virtbench_cpu_sha256_", "# EOF"} {
				if strings.Contains(line, " "+f) || strings.HasPrefix(line, f) {
					kept = append(kept, line)
					break
				}
			}
		}
		golden(t, name, []byte(strings.Join(kept, "")))
		dec := expfmt.NewDecoder(bytes.NewReader(b.Bytes()), format)
		var got float64
		n := 0
		for {
			var f dto.MetricFamily
			if err := dec.Decode(&f); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s: family %d: %v", name, n, err)
			}
			n++
			if f.GetName() != "virtbench_startup_seconds" {
				continue
			}
			for _, m := range f.GetMetric() {
				l := map[string]string{}
				for _, p := range m.GetLabel() {
					l[p.GetName()] = p.GetValue()
				}
				if l["variant"] == "native" && l["workload"] == "idle" && l["instances"] == "1" {
					for _, q := range m.GetSummary().GetQuantile() {
						if q.GetQuantile() == 0.5 {
							got = q.GetValue()
						}
					}
				}
			}
		}
		if n < 10 || got != want {
			t.Errorf("%s: %d families, native's median start %v, want %v", name, n, got, want)
		}
	}
}

// TestLinearTicks: linear axes are ticked at round steps of the unit they
// show (powers of two for bytes), labelled without trailing zeros.
func TestLinearTicks(t *testing.T) {
	tests := []struct {
		unit   string
		lo, hi float64
		want   string
	}{
		{"B", 0, 160 << 20, "0B 32MiB 64MiB 96MiB 128MiB 160MiB"},
		{"B", 0, 9.5 * (1 << 30), "0B 2GiB 4GiB 6GiB 8GiB"},
		{"sec", 0, 2.3, "0s 500ms 1s 1.5s 2s"},
		{"sec", 0.0012, 0.0061, "2ms 3ms 4ms 5ms 6ms"},
		{"cores", 0, 0.009, "0 cores 0.002 cores 0.004 cores 0.006 cores 0.008 cores"},
		{"", 0, 1.3, "0 0.2 0.4 0.6 0.8 1 1.2"},
		{"instances", 0, 120, "0 instances 20 instances 40 instances 60 instances 80 instances 100 instances 120 instances"},
	}
	for _, tt := range tests {
		var got []string
		for _, tk := range linearTicks(tt.unit).Ticks(tt.lo, tt.hi) {
			got = append(got, tk.Label)
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("ticks of %s %v-%v:\n got %s\nwant %s", tt.unit, tt.lo, tt.hi, g, tt.want)
		}
	}
}

// TestLineChartUndrawable: points a log axis cannot show (a count of 0, a
// median of 0 on a log y axis) are left out, and a chart left with none
// says it has no data rather than panicking.
func TestLineChartUndrawable(t *testing.T) {
	sp := LineSpec{Name: "knee-p99", Title: "t", XLabel: "x", YLabel: "y", Unit: "sec", LogY: true, HLine: 0.05, HLabel: "objective",
		Curves: []Curve{{Label: "a", XY: plotter.XYs{{X: 0, Y: 1}, {X: 1, Y: 0}, {X: 2, Y: 0.01}, {X: 4, Y: 0.02}}}}}
	if _, err := LineChart(sp); err != nil {
		t.Errorf("a chart with some drawable points: %v", err)
	}
	sp.Curves[0].XY = plotter.XYs{{X: 1, Y: 0}, {X: 0, Y: 3}}
	if _, err := LineChart(sp); !errors.Is(err, errNoData) {
		t.Errorf("a chart with no drawable point: %v, want errNoData", err)
	}
}
