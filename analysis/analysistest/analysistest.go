// Package analysistest builds the run and fleet directories the tests of
// the analysis and of its renderers share, from a saved quick run of
// every driver (analysis/testdata/quick: its samples.jsonl, env.json and
// run.json with the vocabulary it recorded).
package analysistest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"virtbench/analysis"
	"virtbench/internal/results"
)

// QuickDir returns the saved quick run's directory.
func QuickDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "quick")
}

// CopyRun copies the saved quick run to dir, changing its env.json with
// edit where given.
func CopyRun(t testing.TB, dir string, edit func(*results.Provenance)) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{results.SamplesFile, results.EnvFile, results.StatusFile} {
		b, err := os.ReadFile(filepath.Join(QuickDir(), f))
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

// WriteHostRecord writes what a campaign says of a host into its
// directory.
func WriteHostRecord(t testing.TB, dir string, rec analysis.HostRecord) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(filepath.Join(dir, analysis.HostRecordFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// GiB is a gibibyte.
const GiB = 1 << 30

// Calibration returns a quiet host's calibration whose CPU probe is
// cpuPerCore operations per second.
func Calibration(cpuPerCore float64) *results.Calibration {
	p := results.Probe{CPUOpsPerSec: cpuPerCore, CPUNoise: 0.01, MemBytesPerSec: 5e9, MemNoise: 0.01, SyscallSec: 1e-7, SyscallNoise: 0.01}
	end := p
	return &results.Calibration{Start: &p, End: &end, StealPercent: 0.1}
}

// Fleet builds, in a new directory, the runs of one scenario on hosts of
// two types: big (16 cores, 64 GiB, 0.8 an hour, 1.4 times as fast per
// core by its calibration), small (under an 8 GiB cgroup limit, 0.05 an
// hour), a host that never answered (lost), one
// whose run was cut short (cut: killed), one the campaign listed and never
// got to (never), beside a file and a directory that are no hosts. It
// returns the directory.
func Fleet(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	CopyRun(t, filepath.Join(dir, "big", "run-1"), func(p *results.Provenance) {
		p.Hostname, p.MemoryBytes, p.Cores, p.Calibration = "big", 64*GiB, 16, Calibration(2800)
	})
	WriteHostRecord(t, filepath.Join(dir, "big"), analysis.HostRecord{Type: "16c64g", PricePerHour: 0.8})
	CopyRun(t, filepath.Join(dir, "small"), func(p *results.Provenance) {
		p.Hostname, p.MemoryLimitBytes, p.MemoryLimitAt, p.Calibration = "small", 8*GiB, "/sys/fs/cgroup/memory/pod", Calibration(2000)
	})
	WriteHostRecord(t, filepath.Join(dir, "small"), analysis.HostRecord{Type: "2c8g", PricePerHour: 0.05})
	WriteHostRecord(t, filepath.Join(dir, "lost"), analysis.HostRecord{Type: "2c8g", Failed: "unreachable: ssh: connect to host lost port 22: Connection refused"})
	CopyRun(t, filepath.Join(dir, "cut"), nil)
	var st results.Status
	if err := results.ReadJSON(filepath.Join(dir, "cut"), results.StatusFile, &st); err != nil {
		t.Fatal(err)
	}
	st.State, st.Reason = results.StateKilled, "virtbench was killed"
	if err := results.WriteJSON(filepath.Join(dir, "cut"), results.StatusFile, st); err != nil {
		t.Fatal(err)
	}
	// Not a host: a file, and a directory the campaign did not speak of.
	must(t, os.WriteFile(filepath.Join(dir, "inventory.ini"), nil, 0o644))
	must(t, os.Mkdir(filepath.Join(dir, "empty"), 0o755))
	// A host the campaign listed and never got to: its directory is empty.
	must(t, os.WriteFile(filepath.Join(dir, analysis.CampaignFile), []byte(`{"scenario": "quick", "hosts": ["big", "small", "lost", "cut", "never"]}`), 0o644))
	must(t, os.Mkdir(filepath.Join(dir, "never"), 0o755))
	return dir
}

// Escape is what a hostile host puts in its words: a screen clear and a
// window title.
const Escape = "\x1b[2J\x1b]0;pwned\x07"

// HostileFleet builds, in a new directory, what compromised or broken
// hosts send back: a host whose env.json is a link to a file of the
// controller's (outside, holding "SECRET"), a host directory that is a
// link to a run outside, a directory named with a terminal escape, and a
// host that says hostile things of itself (escapes, markup, a newline
// before a forged benchmark line, a forged table row), beside a campaign
// listing a host named "../escape". It returns the directory.
func HostileFleet(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	outside := t.TempDir()
	secret := filepath.Join(outside, "shadow.json")
	must(t, os.WriteFile(secret, []byte(`{"hostname": "SECRET-HOST", "cpu_model": "SECRET-CPU"}`), 0o600))
	CopyRun(t, filepath.Join(dir, "linked"), nil)
	must(t, os.Remove(filepath.Join(dir, "linked", results.EnvFile)))
	must(t, os.Symlink(secret, filepath.Join(dir, "linked", results.EnvFile)))
	CopyRun(t, filepath.Join(outside, "run"), nil)
	must(t, os.Symlink(filepath.Join(outside, "run"), filepath.Join(dir, "elsewhere")))
	CopyRun(t, filepath.Join(dir, "evil\x1b]0;pwned\x07"), nil)
	CopyRun(t, filepath.Join(dir, "loud"), func(p *results.Provenance) {
		p.Hostname, p.CPUModel = "loud\nBenchmarkForged 1 1 sec", "<script>alert(1)</script>"+Escape
	})
	WriteHostRecord(t, filepath.Join(dir, "loud"), analysis.HostRecord{Type: "t|ype\n| forged | row |" + Escape, PricePerHour: 0.1})
	must(t, os.WriteFile(filepath.Join(dir, analysis.CampaignFile), []byte(`{"scenario": "quick", "hosts": ["linked", "loud", "../escape"]}`), 0o644))
	return dir
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
