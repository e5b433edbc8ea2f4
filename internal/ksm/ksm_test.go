package ksm

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func knobs(t *testing.T, vals map[string]int) string {
	dir := t.TempDir()
	for name, v := range vals {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strconv.Itoa(v)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestRestore: settings are put back as found; a KSM that was merging
// and must stop unmerges first (run=2 written before run=0).
func TestRestore(t *testing.T) {
	dir := knobs(t, map[string]int{"run": 0, "pages_to_scan": 100, "sleep_millisecs": 20})
	saved, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := Set(dir, Trial); err != nil {
		t.Fatal(err)
	}
	if got, _ := Read(dir); got != Trial {
		t.Fatalf("after Set(Trial): %+v", got)
	}
	if err := Restore(dir, saved); err != nil {
		t.Fatal(err)
	}
	if got, _ := Read(dir); got != saved {
		t.Errorf("after Restore: %+v, want %+v", got, saved)
	}
	if err := Available(filepath.Join(dir, "missing")); err == nil {
		t.Error("Available on a kernel without KSM: no error")
	}
}

// TestSettleLimit: counters that never show two full scans do not settle;
// Settle gives up at its limit and says so.
func TestSettleLimit(t *testing.T) {
	dir := knobs(t, map[string]int{"pages_shared": 10, "pages_sharing": 100, "full_scans": 0})
	begin := time.Now()
	st, settled, err := Settle(context.Background(), dir, 10*time.Millisecond, 50*time.Millisecond)
	if err != nil || settled || st.Sharing != 100 || st.Shared != 10 {
		t.Errorf("Settle = %+v, %v, %v; want the counters, not settled", st, settled, err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("Settle took %v past its limit", d)
	}
}

// TestSettleNothingToMerge: with no process offering KSM a page, the
// kernel completes no full scan; Settle says so after a window instead
// of waiting out its limit (the repro waited the whole 60 s).
func TestSettleNothingToMerge(t *testing.T) {
	dir := knobs(t, map[string]int{"pages_shared": 0, "pages_sharing": 0, "pages_unshared": 0, "pages_volatile": 0, "full_scans": 7})
	begin := time.Now()
	_, settled, err := Settle(context.Background(), dir, 10*time.Millisecond, time.Minute)
	if err != nil || !settled {
		t.Errorf("Settle = %v, %v; want settled", settled, err)
	}
	if d := time.Since(begin); d > 30*time.Second {
		t.Errorf("Settle took %v with nothing to merge", d)
	}
}
