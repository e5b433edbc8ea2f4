package container_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"virtbench/drivers"
	"virtbench/drivers/container"
	"virtbench/drivers/drivertest"
	"virtbench/guest"
)

// BenchmarkStartReady starts and stops containers back to back, as
// drivers/native's benchmark of the same name does the native baseline,
// and reports the mean of each phase of the start (ms/op per phase): the
// container's own cost, away from the runner's other work.
//
//	go test ./drivers/container -run '^$' -bench StartReady -benchtime 200x
func BenchmarkStartReady(b *testing.B) {
	drivertest.RequiresRoot(b)
	d, err := container.New(drivertest.NewEnv(b, drivertest.Options{}))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Check(ctx); err != nil {
		b.Fatal(err)
	}
	phases := map[string]time.Duration{}
	var order []string
	var total time.Duration
	i := 0
	for b.Loop() {
		inst, err := d.Start(ctx, drivers.Spec{ID: fmt.Sprint("bench-", i), Workload: guest.IdleWorkload})
		i++
		if err != nil {
			b.Fatal(err)
		}
		r, err := inst.Ready(ctx)
		if err != nil {
			b.Fatal(err)
		}
		total += r.Startup()
		prev := r.Begin
		for _, ph := range r.Phases {
			if _, ok := phases[ph.Name]; !ok {
				order = append(order, ph.Name)
			}
			phases[ph.Name] += ph.At.Sub(prev)
			prev = ph.At
		}
		phases["agent"] += r.At.Sub(prev)
		if err := inst.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/1e3/float64(b.N), "ready-ms/op")
	for _, name := range append(order, "agent") {
		b.ReportMetric(float64(phases[name].Microseconds())/1e3/float64(b.N), name+"-ms/op")
	}
}
