package state

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"virtbench/internal/ksm"
)

// TestCleanRestoresKSM: a killed run's record of the host's KSM settings
// puts them back, merged pages unmerged first.
func TestCleanRestoresKSM(t *testing.T) {
	knobs := t.TempDir()
	for name, v := range map[string]int{"run": 1, "pages_to_scan": 5000, "sleep_millisecs": 10} {
		if err := os.WriteFile(filepath.Join(knobs, name), []byte(strconv.Itoa(v)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := filepath.Join(t.TempDir(), "run-x")
	rec := filepath.Join(run, "host-ksm")
	if err := os.MkdirAll(rec, 0o700); err != nil {
		t.Fatal(err)
	}
	saved := ksm.Settings{Run: 0, PagesToScan: 100, SleepMillisecs: 20}
	if err := Write(rec, Record{Driver: "host", KSM: &KSM{Dir: knobs, Saved: saved}}); err != nil {
		t.Fatal(err)
	}
	did, err := Clean(Orphan{Dir: run})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := ksm.Read(knobs); got != saved {
		t.Errorf("KSM after clean %+v, want %+v", got, saved)
	}
	if !strings.Contains(strings.Join(did, "\n"), "restored the host's KSM settings: run=0 pages_to_scan=100 sleep_millisecs=20") {
		t.Errorf("clean said %q", did)
	}
	if _, err := os.Stat(run); !os.IsNotExist(err) {
		t.Errorf("state directory left: %v", err)
	}
}
