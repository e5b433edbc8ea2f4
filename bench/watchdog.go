package bench

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// StallThreshold is the shortest gap in virtbench's own running that
// counts as a stall: its watchdog ticks every stallTick, and a tick that
// comes this much later than due means the process was stopped (SIGSTOP,
// a debugger) or the host did not run it (a stalled VM, steal). A loaded
// host delays a tick by milliseconds, not by this.
const StallThreshold = time.Second

const stallTick = 50 * time.Millisecond

// watchdog notices when virtbench itself did not run: what it timed
// meanwhile (a start, a stop) includes the stall, not the instances' cost.
type watchdog struct {
	mu     sync.Mutex
	stalls []stall
	last   time.Time // the last tick
}

// stall is a time virtbench did not run.
type stall struct{ from, to time.Time }

// watch ticks until ctx ends, recording each stall.
func (w *watchdog) watch(ctx context.Context) {
	t := time.NewTicker(stallTick)
	defer t.Stop()
	w.mu.Lock()
	w.last = time.Now()
	w.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// time.Now's monotonic reading runs on while the process is
			// stopped, so the gap is the stall.
			now := time.Now()
			w.mu.Lock()
			if now.Sub(w.last) >= StallThreshold {
				w.stalls = append(w.stalls, stall{w.last, now})
			}
			w.last = now
			w.mu.Unlock()
		}
	}
}

// during returns how long virtbench stalled between from and to, or 0:
// the stalls the watchdog saw, and the one it has not seen yet when its
// last tick is a stall ago (the caller ran first after the stall).
func (w *watchdog) during(from, to time.Time) time.Duration {
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	stalls := w.stalls
	if !w.last.IsZero() && to.Sub(w.last) >= StallThreshold {
		stalls = append(stalls[:len(stalls):len(stalls)], stall{w.last, to})
	}
	var d time.Duration
	for _, s := range stalls {
		if lo, hi := later(s.from, from), earlier(s.to, to); hi.After(lo) {
			d += hi.Sub(lo)
		}
	}
	return d
}

// stalledReason says why a trial between from and to is excluded, or ""
// when virtbench ran throughout.
func (w *watchdog) stalledReason(from, to time.Time) string {
	d := w.during(from, to)
	if d == 0 {
		return ""
	}
	return fmt.Sprintf("virtbench itself did not run for %.1f s during the trial (it was stopped, or the host stalled): what it timed includes that", d.Seconds())
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
