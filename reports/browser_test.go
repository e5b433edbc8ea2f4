package reports

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"virtbench/analysis"
	"virtbench/internal/required"
	"virtbench/internal/results"
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
// and checks what a person would see: the summary and contents, every
// chart laid out with a size, no table cell wider than the viewport, a
// screenshot and the charts' PNGs that decode.
func TestReportInBrowser(t *testing.T) {
	browser := chromium(t)
	dir := t.TempDir()
	store, err := results.CreateStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range testSamples() {
		store.Add(s)
	}
	store.Close()
	a := testAnalysis(t, testSamples(), testOutcome(t))
	a.Run.Dir, a.Run.Status.Scenario, a.Run.Status.State = dir, "quick", results.StateCompleted
	a.Run.Provenance = results.Provenance{Hostname: "h", MemoryBytes: 24 << 30}
	// Capacity for this host's memory.
	a = analysis.Analyze(a.Run, nil)
	path, err := WriteAll(a)
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
	// Layout, as a person's browser lays it out: a test-only copy of the
	// page with a script that measures it (the report itself has none).
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	probe := `<script>
const vw = document.documentElement.clientWidth;
let wide = [];
for (const c of document.querySelectorAll("td, th")) {
  const r = c.getBoundingClientRect();
  if (r.width > vw) wide.push(c.textContent.slice(0, 40));
}
let imgs = 0, empty = 0;
for (const s of document.querySelectorAll(".chart svg, .lesson svg")) {
  const r = s.getBoundingClientRect();
  imgs++;
  if (r.width < 50 || r.height < 50) empty++;
}
const out = document.createElement("pre");
out.id = "layout";
out.textContent = "page " + document.documentElement.scrollWidth + " viewport " + vw + " wide " + wide.length + " charts " + imgs + " empty " + empty + (wide.length ? " first " + wide[0] : "");
document.body.appendChild(out);
</script></body>`
	probed := filepath.Join(dir, "probed.html")
	if err := os.WriteFile(probed, bytes.Replace(page, []byte("</body>"), []byte(probe), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = exec.CommandContext(ctx, browser, append(common, "--dump-dom", "file://"+probed)...)
	laid, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	var pageW, viewW, wide, charts, empty int
	i := bytes.Index(laid, []byte(`<pre id="layout">`))
	if i < 0 {
		t.Fatalf("the layout probe did not run: %s", laid[max(0, len(laid)-300):])
	}
	if _, err := fmt.Sscanf(string(laid[i+len(`<pre id="layout">`):]), "page %d viewport %d wide %d charts %d empty %d", &pageW, &viewW, &wide, &charts, &empty); err != nil {
		t.Fatalf("layout probe: %v", err)
	}
	t.Logf("layout: page %d px, viewport %d px, %d charts", pageW, viewW, charts)
	if wide > 0 || pageW > viewW {
		t.Errorf("%d table cells wider than the %d px viewport; the page is %d px wide", wide, viewW, pageW)
	}
	if charts == 0 || empty > 0 {
		t.Errorf("%d charts laid out, %d of them smaller than 50 px", charts, empty)
	}

	shot := filepath.Join(t.TempDir(), "report.png")
	cmd = exec.CommandContext(ctx, browser, append(common, "--screenshot="+shot, "file://"+path)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() < 1000 || img.Bounds().Dy() < 1000 {
		t.Errorf("screenshot: %v, %v; want a decoded PNG of the rendered page", img.Bounds(), err)
	}
	// Every chart's PNG decodes to a picture of its own size.
	for _, c := range []string{"startup", "memory", "startup-phases", "perf-ratio"} {
		f, err := os.Open(filepath.Join(dir, c+".png"))
		if err != nil {
			t.Error(err)
			continue
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width < 300 || cfg.Height < 200 {
			t.Errorf("chart %s: %+v, %v", c, cfg, err)
		}
	}
}
