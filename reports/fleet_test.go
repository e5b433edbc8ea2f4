package reports

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"virtbench/internal/results"
)

// copyRun copies the run directory testdata/quick to dir, changing its
// env.json with edit.
func copyRun(t *testing.T, dir string, edit func(*results.Provenance)) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{results.SamplesFile, results.EnvFile, results.StatusFile} {
		b, err := os.ReadFile(filepath.Join("testdata/quick", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == results.EnvFile && edit != nil {
			var p results.Provenance
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
			edit(&p)
			if b, err = json.Marshal(p); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func writeHostInfo(t *testing.T, dir string, info HostInfo) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(info)
	if err := os.WriteFile(filepath.Join(dir, HostInfoFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFleet merges the runs of one scenario on hosts of two types, one
// under a cgroup's memory limit, beside a host that never answered and one
// whose run was cut short: every host has a row, the failed ones with the
// reason; each variant's capacity follows its host's budget; the fleet's
// totals add the hosts up and name the cheapest host type per
// instance-hour.
func TestFleet(t *testing.T) {
	const gib = 1 << 30
	dir := t.TempDir()
	copyRun(t, filepath.Join(dir, "big", "run-1"), func(p *results.Provenance) { p.Hostname, p.MemoryBytes, p.Cores = "big", 64*gib, 16 })
	writeHostInfo(t, filepath.Join(dir, "big"), HostInfo{Type: "16c64g", PricePerHour: 0.8})
	copyRun(t, filepath.Join(dir, "small"), func(p *results.Provenance) {
		p.Hostname, p.MemoryLimitBytes, p.MemoryLimitAt = "small", 8*gib, "/sys/fs/cgroup/memory/pod"
	})
	writeHostInfo(t, filepath.Join(dir, "small"), HostInfo{Type: "2c8g", PricePerHour: 0.05})
	writeHostInfo(t, filepath.Join(dir, "lost"), HostInfo{Type: "2c8g", Failed: "unreachable: ssh: connect to host lost port 22: Connection refused"})
	copyRun(t, filepath.Join(dir, "cut"), nil)
	var st results.Status
	if err := results.ReadJSON(filepath.Join(dir, "cut"), results.StatusFile, &st); err != nil {
		t.Fatal(err)
	}
	st.State, st.Reason = results.StateKilled, "virtbench was killed"
	b, _ := json.Marshal(st)
	os.WriteFile(filepath.Join(dir, "cut", results.StatusFile), b, 0o644)
	// Not a host: a file, and a directory the campaign did not speak of.
	os.WriteFile(filepath.Join(dir, "inventory.ini"), nil, 0o644)
	os.Mkdir(filepath.Join(dir, "empty"), 0o755)
	// A host the campaign listed and never got to: its directory is empty.
	os.WriteFile(filepath.Join(dir, CampaignFile), []byte(`{"scenario": "quick", "hosts": ["big", "small", "lost", "cut", "never"]}`), 0o644)
	os.Mkdir(filepath.Join(dir, "never"), 0o755)

	f, err := LoadFleet(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	failed := map[string]string{}
	for _, h := range f.Hosts {
		names = append(names, h.Name)
		failed[h.Name] = h.Failed
	}
	if strings.Join(names, ",") != "big,cut,lost,never,small" {
		t.Fatalf("hosts %v, want big, cut, lost, never, small", names)
	}
	if failed["big"] != "" || failed["small"] != "" || !strings.Contains(failed["lost"], "unreachable") || !strings.Contains(failed["cut"], "killed") || !strings.Contains(failed["never"], "campaign ended before") {
		t.Errorf("failures %q: want lost unreachable and cut killed, the others none", failed)
	}
	fa := AnalyzeFleet(f, 1000)
	idle := map[string]int{}
	for _, r := range fa.Rows {
		idle[r.Variant+"@"+r.Host] = r.Capacity.Idle
	}
	// qemu is memory-bound in this run: 64 GiB hold more than 24, and an
	// 8 GiB cgroup fewer still.
	if !(idle["qemu@big"] > idle["qemu@cut"] && idle["qemu@cut"] > idle["qemu@small"] && idle["qemu@small"] > 0) {
		t.Errorf("qemu capacities %v: want big > cut (24 GiB) > small (8 GiB limit) > 0", idle)
	}
	// The cut host's rows are shown, and count for nothing: its run did
	// not complete.
	for _, r := range fa.Rows {
		if r.Counted != (r.Host != "cut") {
			t.Errorf("%s on %s: counted %v, want only completed hosts counted", r.Variant, r.Host, r.Counted)
		}
	}
	var qemu *FleetTotal
	for i := range fa.Totals {
		if fa.Totals[i].Variant == "qemu" {
			qemu = &fa.Totals[i]
		}
	}
	if qemu == nil {
		t.Fatalf("totals %+v: no qemu row", fa.Totals)
	}
	tot := *qemu
	{
		if want := idle["qemu@big"] + idle["qemu@small"]; tot.Idle != want {
			t.Errorf("qemu fleet total %d, want %d (big and small; cut failed)", tot.Idle, want)
		}
		// 0.05 an hour for the small host's VMs against 0.8 for the big
		// one's (about 9 times as many).
		if want := 0.05 / float64(idle["qemu@small"]); tot.Cheapest != "2c8g" || tot.Cost != want {
			t.Errorf("qemu cheapest %q at %v, want 2c8g at %v", tot.Cheapest, tot.Cost, want)
		}
		// 1000 VMs: ceil(1000/24) = 42 small hosts at 0.05 (2.10 an
		// hour) against ceil(1000/210) = 5 big ones at 0.8 (4.00).
		if p := tot.For; p == nil || p.HostType != "2c8g" || p.Hosts != (1000+idle["qemu@small"]-1)/idle["qemu@small"] || p.CostPerHour != float64(p.Hosts)*0.05 {
			t.Errorf("qemu for 1000 instances: %+v, want the small hosts, as many as hold 1000", p)
		}
	}
	path, err := WriteFleet(f, fa)
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
	md, err := os.ReadFile(filepath.Join(dir, FleetMarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "fleet.md", md)
}

// TestFleetHostile: what compromised or broken hosts send back cannot
// reach beyond their directories or into the operator's terminal: a
// record linked to a file of the controller is not read (and nothing of
// the file shows), a host directory that is a link or whose name is not a
// host's is left out, control characters and markup in a host's words are
// escaped in every output, the SVGs stay valid XML, and impossible
// figures cannot overflow the totals.
func TestFleetHostile(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	secret := filepath.Join(outside, "shadow.json")
	if err := os.WriteFile(secret, []byte(`{"hostname": "SECRET-HOST", "cpu_model": "SECRET-CPU"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// A host whose env.json is a link to the controller's file.
	copyRun(t, filepath.Join(dir, "linked"), nil)
	os.Remove(filepath.Join(dir, "linked", results.EnvFile))
	if err := os.Symlink(secret, filepath.Join(dir, "linked", results.EnvFile)); err != nil {
		t.Fatal(err)
	}
	// A host directory that is a link to a run outside.
	copyRun(t, filepath.Join(outside, "run"), nil)
	if err := os.Symlink(filepath.Join(outside, "run"), filepath.Join(dir, "elsewhere")); err != nil {
		t.Fatal(err)
	}
	// A directory named with a terminal escape.
	copyRun(t, filepath.Join(dir, "evil\x1b]0;pwned\x07"), nil)
	// A host that says hostile things of itself.
	const escape = "\x1b[2J\x1b]0;pwned\x07"
	copyRun(t, filepath.Join(dir, "loud"), func(p *results.Provenance) {
		p.Hostname, p.CPUModel = "loud\nBenchmarkForged 1 1 sec", "<script>alert(1)</script>"+escape
	})
	writeHostInfo(t, filepath.Join(dir, "loud"), HostInfo{Type: "t|ype\n| forged | row |" + escape, PricePerHour: 0.1})
	os.WriteFile(filepath.Join(dir, CampaignFile), []byte(`{"scenario": "quick", "hosts": ["linked", "loud", "../escape"]}`), 0o644)

	f, err := LoadFleet(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range f.Hosts {
		names = append(names, h.Name)
		if h.Run != nil && h.Run.Samples != nil {
			t.Errorf("%s: the fleet keeps the host's %d samples, want only its analysis", h.Name, len(h.Run.Samples))
		}
		if h.Name == "linked" && !strings.Contains(h.Failed, "symbolic link") {
			t.Errorf("linked: failed %q, want its env.json refused as a link", h.Failed)
		}
	}
	if strings.Join(names, ",") != "linked,loud" {
		t.Errorf("hosts %q, want linked and loud only", names)
	}
	if w := strings.Join(f.Warnings, "\n"); !strings.Contains(w, `"../escape"`) || !strings.Contains(w, `evil\x1b]0;pwned\a`) {
		t.Errorf("warnings %q: want the bad host names named", f.Warnings)
	}
	fa := AnalyzeFleet(f, 10)
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
	if bytes.Contains(outputs[FleetMarkdownFile], []byte("<script")) || bytes.Contains(outputs[FleetMarkdownFile], []byte("\n| forged")) {
		t.Errorf("fleet.md passes a host's markup or rows:\n%s", outputs[FleetMarkdownFile])
	}
	var bench bytes.Buffer
	for _, h := range f.Hosts {
		if h.Name == "loud" {
			r, err := Load(filepath.Join(dir, "loud"))
			if err != nil {
				t.Fatal(err)
			}
			if err := WriteBenchfmt(&bench, r.Provenance, r.Samples); err != nil {
				t.Fatal(err)
			}
		}
	}
	if strings.Contains(bench.String(), "\nBenchmarkForged") {
		t.Errorf("results.txt has a line a host's name wrote")
	}
}

// TestFleetImpossibleFigures: hosts claiming a PSS far below a page cannot
// overflow the capacity model or the fleet's totals (the repro: capacity
// -9223372036854775808, a total of -4.05e18, "0 × t0 at 0 per hour").
func TestFleetImpossibleFigures(t *testing.T) {
	sums := []results.Summary{
		{Key: results.Key{Driver: "container", Workload: "idle", Instances: 1, Metric: results.MetricPSS}, Unit: "B", N: 5, Median: 0.05, CILo: 0.01, CIHi: 0.1},
		{Key: results.Key{Driver: "container", Workload: "idle", Instances: 2, Metric: results.MetricHostMemDrop}, Unit: "B", N: 5, Median: 0.05, CILo: 0.01, CIHi: 0.1},
	}
	var hosts []FleetHost
	for _, n := range []string{"t0", "t1"} {
		caps := EstimateCapacity(sums, []Host{{Name: ThisHost, Ran: true, MemoryBytes: 1 << 62, CPUs: 1}})
		for _, c := range caps {
			if c.Idle < 0 || c.Idle > MaxCount || c.IdleLo < 0 || c.IdleHi < 0 {
				t.Fatalf("capacity %+v: want a count within 0 and %d", c, MaxCount)
			}
		}
		hosts = append(hosts, FleetHost{Name: n, Info: HostInfo{Type: n, PricePerHour: 1}, Run: &Run{}, Analysis: &Analysis{Summaries: sums, Capacity: caps}})
	}
	fa := AnalyzeFleet(&Fleet{Hosts: hosts}, 1000)
	if len(fa.Totals) != 1 {
		t.Fatalf("totals %+v, want one", fa.Totals)
	}
	tot := fa.Totals[0]
	if tot.Idle <= 0 || tot.Idle > MaxCount || tot.For == nil || tot.For.Hosts != 1 || tot.For.CostPerHour != 1 {
		t.Errorf("total %+v (plan %+v): want a positive count within MaxCount, and one host for 1000", tot, tot.For)
	}
}
