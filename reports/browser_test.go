package reports

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"virtbench/bench"
	"virtbench/internal/required"
)

// chromium returns the headless browser Debian installs (run.sh installs it).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	required.Skip(t, "chromium", "no Chromium: apt-get install chromium (./run.sh installs it) to test the report in a browser")
	return ""
}

// TestReportInBrowser renders report.html in headless Chromium, offline,
// and checks the rendered DOM and a screenshot.
func TestReportInBrowser(t *testing.T) {
	browser := chromium(t)
	dir := t.TempDir()
	store, err := bench.CreateStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range testSamples() {
		store.Add(s)
	}
	store.Close()
	run := &Run{Dir: dir, Samples: testSamples(), Status: bench.Status{Scenario: "quick", State: bench.StateCompleted},
		Provenance: bench.Provenance{Hostname: "h", MemoryBytes: 24 << 30}}
	run.Summaries = bench.Summarize(run.Samples)
	path, err := WriteAll(run, Analyze(run))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	profile := t.TempDir()
	common := []string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + profile,
		"--no-first-run", "--disable-extensions", "--proxy-server=127.0.0.1:9", "--window-size=1200,3000"}
	cmd := exec.CommandContext(ctx, browser, append(common, "--dump-dom", "file://"+path)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{`id="claims"`, "Containers start in seconds", `id="chart-startup"`, "<svg", `id="results"`, `id="provenance"`,
		`id="summary"`, "Fastest start to READY: native", `id="toc"`, `href="#charts"`, `href="samples.jsonl"`, `class="read"`} {
		if !strings.Contains(string(dom), want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	shot := filepath.Join(t.TempDir(), "report.png")
	cmd = exec.CommandContext(ctx, browser, append(common, "--screenshot="+shot, "file://"+path)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) || len(png) < 20000 {
		t.Errorf("screenshot: %d bytes, %v; want a PNG of a rendered page", len(png), err)
	}
}
