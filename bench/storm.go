package bench

import (
	"context"
	"runtime"
	"time"

	"virtbench/internal/results"
)

// stormSteps are a start storm's measuring steps: start every instance
// at once and measure how fast they came up, sample their memory (which
// the guards plan the next, larger storm with), exclude the trial if an
// instance exited, and stop them.
func (t *trial) stormSteps(memBefore int64) []trialStep {
	return []trialStep{
		{"storm", t.stormStart},
		{"memory", func(ctx context.Context, insts []*started) { t.sampleMemory(ctx, insts, memBefore) }},
		{"exits", func(_ context.Context, insts []*started) {
			if why := exitedDuring(insts); why != "" {
				t.exclude(why)
			}
		}},
		{"stop", func(_ context.Context, insts []*started) { t.stopAll(insts) }},
	}
}

// storm starts every instance at once, each recorded as
// results.MetricStormStartup, and records the storm's rate: the instances
// READY over the time from the first start to the last READY
// (results.MetricStormRate), and that over the host's CPUs
// (results.MetricStormRatePerCore).
func (t *trial) stormStart(ctx context.Context, insts []*started) {
	begin := time.Now()
	t.startParallel(ctx, insts, len(insts), results.MetricStormStartup)
	ready, last := 0, begin
	for _, st := range insts {
		if st.err == nil {
			ready++
			if st.ready.At.After(last) {
				last = st.ready.At
			}
		}
	}
	if ready == 0 || ctx.Err() != nil {
		return
	}
	rate := float64(ready) / last.Sub(begin).Seconds()
	t.record(results.Sample{Metric: results.MetricStormRate, Unit: "inst/s", Value: rate})
	t.record(results.Sample{Metric: results.MetricStormRatePerCore, Unit: "inst/s/core", Value: rate / float64(runtime.NumCPU())})
}
