// Package ksm reads and changes the host's Kernel Samepage Merging: the
// kernel thread that merges identical anonymous pages of processes that
// allow it (QEMU marks guest RAM mergeable), the technique VM platforms
// use for density.
//
// Changing KSM changes the host for everyone: a caller saves Settings
// first, records them where a crash cannot lose them, and restores them
// (Restore) when done.
package ksm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Dir is where the kernel exposes KSM.
const Dir = "/sys/kernel/mm/ksm"

// Settings are the KSM knobs virtbench changes.
type Settings struct {
	// Run is 0 (stopped), 1 (merging) or 2 (stopped, every merged page
	// unmerged).
	Run int `json:"run"`
	// PagesToScan and SleepMillisecs set the scan rate: pages per batch
	// and the pause between batches.
	PagesToScan    int `json:"pages_to_scan"`
	SleepMillisecs int `json:"sleep_millisecs"`
}

// Stats are KSM's counters, in pages.
type Stats struct {
	// Shared counts the pages KSM keeps (one per group of identical
	// pages); Sharing counts the pages mapped onto them: the pages saved.
	Shared, Sharing int64
	FullScans       int64
	// Unshared and Volatile count the mergeable pages KSM scanned that
	// are unique so far or change too often to merge: with Shared and
	// Sharing, every page it has to scan.
	Unshared, Volatile int64
}

// nothingToScan reports whether no process offers KSM a page: the kernel
// then never completes a full scan (ksmd has no process to walk).
func (s Stats) nothingToScan() bool {
	return s.Shared+s.Sharing+s.Unshared+s.Volatile == 0
}

// Trial is the scan rate virtbench sets while instances start: fast
// enough that a few idle VMs settle within seconds on a small host, at
// the cost of most of a core.
var Trial = Settings{Run: 1, PagesToScan: 5000, SleepMillisecs: 10}

// Maintain is the scan rate once merging settled: the kernel's default,
// which keeps pages merged at a small steady cost, so that what the
// instances' idle CPU and the host's busy CPU show is a host's normal
// running state, not the fast scan.
var Maintain = Settings{Run: 1, PagesToScan: 100, SleepMillisecs: 20}

// Available reports whether the kernel has KSM (dir exists) and whether it
// can be changed here.
func Available(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "run")); err != nil {
		return fmt.Errorf("ksm: this kernel has no KSM (%v): build it with CONFIG_KSM", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "run"), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("ksm: cannot change KSM here (%v): run as root", err)
	}
	return f.Close()
}

// Read returns the current settings.
func Read(dir string) (Settings, error) {
	var s Settings
	var err error
	for _, f := range []struct {
		name string
		v    *int
	}{{"run", &s.Run}, {"pages_to_scan", &s.PagesToScan}, {"sleep_millisecs", &s.SleepMillisecs}} {
		var n int64
		if n, err = readInt(dir, f.name); err != nil {
			return Settings{}, err
		}
		*f.v = int(n)
	}
	return s, nil
}

// Set writes the scan rate, then run.
func Set(dir string, s Settings) error {
	if err := write(dir, "pages_to_scan", s.PagesToScan); err != nil {
		return err
	}
	if err := write(dir, "sleep_millisecs", s.SleepMillisecs); err != nil {
		return err
	}
	return write(dir, "run", s.Run)
}

// Restore puts saved back. When KSM was merging here and saved says it
// was not, the merged pages are unmerged first (run=2) so that nothing of
// the trial stays merged; then saved is written.
func Restore(dir string, saved Settings) error {
	now, err := Read(dir)
	if err != nil {
		return err
	}
	if now.Run == 1 && saved.Run != 1 {
		if err := write(dir, "run", 2); err != nil {
			return err
		}
	}
	return Set(dir, saved)
}

// ReadStats returns KSM's counters.
func ReadStats(dir string) (Stats, error) {
	var s Stats
	var err error
	if s.Shared, err = readInt(dir, "pages_shared"); err != nil {
		return s, err
	}
	if s.Sharing, err = readInt(dir, "pages_sharing"); err != nil {
		return s, err
	}
	if s.FullScans, err = readInt(dir, "full_scans"); err != nil {
		return s, err
	}
	// Counters a kernel may lack; read as 0 then.
	s.Unshared, _ = readInt(dir, "pages_unshared")
	s.Volatile, _ = readInt(dir, "pages_volatile")
	return s, nil
}

// Settle waits until merging settles: pages_sharing has grown by less than
// 1% over the last window, after at least two full scans since the call;
// or no process offers KSM a page after a window (the kernel then
// completes no scan, and there is nothing to merge); or until limit
// passes. It returns the last counters and whether they settled.
func Settle(ctx context.Context, dir string, window, limit time.Duration) (Stats, bool, error) {
	start, err := ReadStats(dir)
	if err != nil {
		return start, false, err
	}
	deadline := time.Now().Add(limit)
	prev := start
	for {
		t := time.NewTimer(window)
		select {
		case <-ctx.Done():
			t.Stop()
			return prev, false, ctx.Err()
		case <-t.C:
		}
		cur, err := ReadStats(dir)
		if err != nil {
			return prev, false, err
		}
		grew := cur.Sharing - prev.Sharing
		if cur.FullScans >= start.FullScans+2 && float64(grew) <= 0.01*float64(max(prev.Sharing, 1)) {
			return cur, true, nil
		}
		if cur.FullScans == start.FullScans && cur.nothingToScan() {
			return cur, true, nil
		}
		if time.Now().After(deadline) {
			return cur, false, nil
		}
		prev = cur
	}
}

func readInt(dir, name string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return 0, fmt.Errorf("ksm: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("ksm: %s: %w", name, err)
	}
	return n, nil
}

func write(dir, name string, v int) error {
	err := os.WriteFile(filepath.Join(dir, name), []byte(strconv.Itoa(v)), 0)
	// Writing run=2 while pages are being unmerged may be refused for a
	// moment.
	for i := 0; i < 50 && errors.Is(err, syscall.EBUSY); i++ {
		time.Sleep(20 * time.Millisecond)
		err = os.WriteFile(filepath.Join(dir, name), []byte(strconv.Itoa(v)), 0)
	}
	if err != nil {
		return fmt.Errorf("ksm: set %s=%d: %w", name, v, err)
	}
	return nil
}
