package native_test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"virtbench/drivers"
	"virtbench/drivers/drivertest"
	"virtbench/drivers/native"
	"virtbench/guest"
)

// The native baseline against hyperfine's figure for the same agent
// (hyperfine -N 'virtbench-guest crash -code 0': exec to exit). Run
// together, so that the machine is the same:
//
//	go test ./drivers/native -run '^$' -bench . -benchtime 300x
//
// BenchmarkExecExit is hyperfine's measurement done with os/exec;
// BenchmarkStartReady is what virtbench records as native's start to
// READY, reported as ns/op and, for the part after exec returned, as
// agent-ns/op. Their difference, less the agent's exit that only
// BenchmarkExecExit pays, is the harness's own.

func BenchmarkExecExit(b *testing.B) {
	agent := drivertest.Agent(b)
	for b.Loop() {
		if err := exec.Command(agent, "crash", "-code", "0").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStartReady(b *testing.B) {
	d := native.New(drivertest.Agent(b))
	ctx := context.Background()
	var total, agent time.Duration
	for b.Loop() {
		inst, err := d.Start(ctx, drivers.Spec{ID: "bench", Workload: guest.IdleWorkload})
		if err != nil {
			b.Fatal(err)
		}
		r, err := inst.Ready(ctx)
		if err != nil {
			b.Fatal(err)
		}
		total += r.At.Sub(r.Begin)
		if len(r.Phases) > 0 {
			agent += r.At.Sub(r.Phases[len(r.Phases)-1].At)
		}
		if err := inst.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ready-ns/op")
	b.ReportMetric(float64(agent.Nanoseconds())/float64(b.N), "agent-ns/op")
}
