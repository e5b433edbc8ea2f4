package reports

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"virtbench/analysis"
	"virtbench/analysis/analysistest"
)

// TestFleetReport renders the test fleet (analysistest.Fleet): the
// failed hosts with their reasons, the cut host's rows marked as not
// counted, the limits each host ran under, the charts; fleet.md as its
// golden file.
func TestFleetReport(t *testing.T) {
	f, err := analysis.LoadFleet(analysistest.Fleet(t))
	if err != nil {
		t.Fatal(err)
	}
	path, err := WriteFleet(f, analysis.AnalyzeFleet(f, 1000))
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"failed: unreachable: ssh: connect to host lost", "failed: the run ended killed", "(not counted: the host failed)", "16c64g", "memory 8.000GiB", "<svg"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("fleet.html lacks %q", want)
		}
	}
	md, err := os.ReadFile(filepath.Join(f.Dir, FleetMarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "fleet.md", md)
}

// TestFleetReportHostile: what compromised or broken hosts send back
// (analysistest.HostileFleet) cannot reach the operator's terminal or the
// report's readers: control characters and markup in a host's words are
// escaped in every output, the SVGs stay valid XML, nothing of a
// controller's file linked from a host shows, and a host's name cannot
// write a line into results.txt.
func TestFleetReportHostile(t *testing.T) {
	dir := analysistest.HostileFleet(t)
	f, err := analysis.LoadFleet(dir)
	if err != nil {
		t.Fatal(err)
	}
	fa := analysis.AnalyzeFleet(f, 10)
	path, err := WriteFleet(f, fa)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := WriteFleetText(&text, f, fa); err != nil {
		t.Fatal(err)
	}
	outputs := map[string][]byte{"text": text.Bytes()}
	for _, name := range []string{filepath.Base(path), FleetMarkdownFile, FleetJSONFile, "fleet-startup.svg", "fleet-capacity.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		outputs[name] = b
	}
	for name, b := range outputs {
		if bytes.Contains(b, []byte("SECRET")) || bytes.ContainsAny(b, "\x1b\x07") {
			t.Errorf("%s holds the controller's secret or a control character", name)
		}
		if strings.HasSuffix(name, ".svg") {
			d := xml.NewDecoder(bytes.NewReader(b))
			for {
				if _, err := d.Token(); err != nil {
					if err != io.EOF {
						t.Errorf("%s is not valid XML: %v", name, err)
					}
					break
				}
			}
		}
	}
	if md := outputs[FleetMarkdownFile]; bytes.Contains(md, []byte("<script")) || bytes.Contains(md, []byte("\n| forged")) {
		t.Errorf("fleet.md passes a host's markup or rows:\n%s", md)
	}
	run, err := analysis.Load(filepath.Join(dir, "loud"))
	if err != nil {
		t.Fatal(err)
	}
	var bench bytes.Buffer
	if err := WriteBenchfmt(&bench, run); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(bench.String(), "\nBenchmarkForged") {
		t.Errorf("results.txt has a line a host's name wrote")
	}
}
