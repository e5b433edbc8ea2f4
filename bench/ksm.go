package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"virtbench/drivers/state"
	"virtbench/internal/ksm"
	"virtbench/internal/results"
)

// KSMSettleLimit bounds the wait for KSM's merging to settle.
const KSMSettleLimit = 60 * time.Second

// hostKSM turns KSM on for the trials that ask for it and puts the host's
// settings back. It holds them through the host-wide KSM record
// (state.HoldKSM), written before anything changes: concurrent runs share
// it whatever their state roots, the settings found by the first holder
// come back when the last one lets go, and `virtbench clean` puts them
// back after a crash.
type hostKSM struct {
	dir     string        // ksm.Dir, or a fake in tests
	hostDir string        // state.HostDir(), or a test's
	window  time.Duration // see Runner.KSMWindow
	held    bool
	on      time.Time // when the fast scan last began
}

// enable holds the host's settings (once) and turns merging on at the
// kernel's default scan rate (ksm.Maintain); settleKSM scans fast once the
// instances run.
func (h *hostKSM) enable() error {
	if h == nil {
		return errors.New("bench: host.ksm=on but KSM was not prepared")
	}
	if !h.held {
		if err := state.HoldKSM(h.hostDir, h.dir); err != nil {
			return err
		}
		h.held = true
	}
	return ksm.Set(h.dir, ksm.Maintain)
}

// restore lets go of the hold: the settings come back (merged pages
// unmerged) unless another run still holds them. It does nothing when
// nothing was held.
func (h *hostKSM) restore() error {
	if !h.held {
		return nil
	}
	if _, err := state.ReleaseKSM(h.hostDir); err != nil {
		return err
	}
	h.held = false
	return nil
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
