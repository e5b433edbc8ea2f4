package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
	"virtbench/internal/results"

	"virtbench/drivers/state"
	"virtbench/internal/ksm"
)

// KSMSettleLimit bounds the wait for KSM's merging to settle.
const KSMSettleLimit = 60 * time.Second

// ksmRecordDir is the directory, in the run's state directory, of the
// record of the host's KSM settings while virtbench has changed them.
const ksmRecordDir = "host-ksm"

// hostKSM turns KSM on for the trials that ask for it and puts the host's
// settings back. The settings found are written to a state record first,
// so that `virtbench clean` restores them after a crash.
type hostKSM struct {
	dir      string // ksm.Dir, or a fake in tests
	stateDir string
	window   time.Duration // see Runner.KSMWindow
	saved    *ksm.Settings
	on       time.Time // when the fast scan last began
}

// enable records the host's settings (once) and turns merging on at the
// kernel's default scan rate (ksm.Maintain); settleKSM scans fast once the
// instances run.
func (h *hostKSM) enable() error {
	if h == nil {
		return errors.New("bench: host.ksm=on but KSM was not prepared")
	}
	if h.saved == nil {
		cur, err := ksm.Read(h.dir)
		if err != nil {
			return err
		}
		rec := filepath.Join(h.stateDir, ksmRecordDir)
		if err := os.MkdirAll(rec, 0o700); err != nil {
			return fmt.Errorf("bench: ksm record: %w", err)
		}
		if err := state.Write(rec, state.Record{Driver: "host", KSM: &state.KSM{Dir: h.dir, Saved: cur}}); err != nil {
			return err
		}
		h.saved = &cur
	}
	return ksm.Set(h.dir, ksm.Maintain)
}

// restore puts the recorded settings back (unmerging what was merged) and
// removes the record. It does nothing when nothing was changed.
func (h *hostKSM) restore() error {
	if h.saved == nil {
		return nil
	}
	if err := ksm.Restore(h.dir, *h.saved); err != nil {
		return err
	}
	h.saved = nil
	return os.RemoveAll(filepath.Join(h.stateDir, ksmRecordDir))
}

// settleKSM scans fast until merging settles among the running instances,
// records KSM's counters and the saving per instance, and slows the scan
// to ksm.Maintain.
func (t *trial) settleKSM(ctx context.Context, insts []*started) {
	h := t.r.ksm
	running := 0
	for _, st := range insts {
		if st.err == nil {
			running++
		}
	}
	h.on = time.Now()
	if err := ksm.Set(h.dir, ksm.Trial); err != nil {
		t.record(results.Sample{Metric: results.MetricKSMSharing, Unit: "pages", Error: err.Error()})
		return
	}
	stats, settled, err := ksm.Settle(ctx, h.dir, h.window, KSMSettleLimit)
	if serr := ksm.Set(h.dir, ksm.Maintain); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		if ctx.Err() == nil {
			t.record(results.Sample{Metric: results.MetricKSMSharing, Unit: "pages", Error: err.Error()})
		}
		return
	}
	labels := map[string]string{"settled": fmt.Sprint(settled)}
	t.record(results.Sample{Metric: results.MetricKSMSettle, Unit: "sec", Value: time.Since(h.on).Seconds(), Labels: labels})
	t.record(results.Sample{Metric: results.MetricKSMShared, Unit: "pages", Value: float64(stats.Shared), Labels: labels})
	t.record(results.Sample{Metric: results.MetricKSMSharing, Unit: "pages", Value: float64(stats.Sharing), Labels: labels})
	if running > 0 {
		saved := float64(stats.Sharing) * float64(os.Getpagesize()) / float64(running)
		t.record(results.Sample{Metric: results.MetricKSMSaved, Unit: "B", Value: saved, Labels: labels})
	}
}
