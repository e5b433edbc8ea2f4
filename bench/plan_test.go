package bench

import (
	"testing"
	"time"

	"virtbench/internal/hostload"
	"virtbench/internal/required"
	"virtbench/internal/tools"
	"virtbench/scenarios"
)

// TestEstimateCountsWorkloads: the plan's estimate counts what a workload
// itself takes (fio's four jobs of -runtime each) and a server's load
// from the host, once per instance, beside the driver's typical trial.
func TestEstimateCountsWorkloads(t *testing.T) {
	for _, tool := range []tools.Tool{tools.FIO, tools.Nginx, tools.Wrk} {
		if err := tool.Check(); err != nil {
			required.Skip(t, "tools", err.Error())
		}
	}
	parse := func(workload string) *scenarios.Scenario {
		t.Helper()
		s, err := scenarios.Parse("test.yaml", []byte("name: t\ndrivers: [native]\nworkloads:\n  - "+workload+"\ninstances: [1, 3]\nreps: 2\nwarmup: 0\nsettle: 0s\n"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	idle := EstimateDuration(parse("idle"), 2)
	// 2 reps × 2 instance counts × 4 jobs of 2 s.
	if fio := EstimateDuration(parse("{name: fio, args: [-runtime, 2s]}"), 2); fio-idle != 2*2*4*2*time.Second {
		t.Errorf("fio estimate %v, idle %v: want 32s more", fio, idle)
	}
	// 2 reps × (1 + 3 instances) loads one after another.
	if nginx := EstimateDuration(parse("nginx"), 2); nginx-idle != 2*4*hostload.Takes(tools.Wrk) {
		t.Errorf("nginx estimate %v, idle %v: want %v more", nginx, idle, 2*4*hostload.Takes(tools.Wrk))
	}
}
