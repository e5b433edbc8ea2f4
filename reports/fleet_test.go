package reports

import (
	"encoding/json"
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
	for _, tot := range fa.Totals {
		if tot.Variant != "qemu" {
			continue
		}
		if want := idle["qemu@big"] + idle["qemu@cut"] + idle["qemu@small"]; tot.Idle != want {
			t.Errorf("qemu fleet total %d, want %d", tot.Idle, want)
		}
		if tot.Cheapest != "2c8g" && tot.Cheapest != "16c64g" || tot.Cost <= 0 {
			t.Errorf("qemu cheapest %q at %v", tot.Cheapest, tot.Cost)
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
	for _, want := range []string{"failed: unreachable: ssh: connect to host lost", "failed: the run ended killed", "16c64g", "memory 8.000GiB", "<svg"} {
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
