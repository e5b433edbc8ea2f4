package qemu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"virtbench/drivers"
	"virtbench/internal/results"
)

// FloorRuns is how many bare starts Floor times.
const FloorRuns = 5

// Floor starts QEMU bare FloorRuns times, with the VM's machine,
// accelerator, CPU and RAM and nothing else, paused (-S), and measures
// each start to its first QMP answer (results.MetricStartFloor): what a VM's
// start cannot go below on this host, QEMU's own start. Under TCG a new
// QEMU also begins with an empty translation cache, which a VM's start
// then fills; the bare start translates nothing.
func (d *Driver) Floor(ctx context.Context) ([]drivers.Measure, error) {
	accel, err := d.Accel()
	if err != nil {
		return nil, err
	}
	var ms []drivers.Measure
	for i := range FloorRuns {
		took, err := d.bareStart(ctx, accel, i)
		if err != nil {
			return ms, err
		}
		ms = append(ms, drivers.Measure{Metric: results.MetricStartFloor, Unit: "sec", Value: took.Seconds()})
	}
	return ms, nil
}

// bareStart starts one bare QEMU, times it to its first QMP answer, and
// stops it; its directory goes with it.
func (d *Driver) bareStart(ctx context.Context, accel string, i int) (_ time.Duration, err error) {
	inst := &instance{}
	defer func() {
		if uerr := inst.undo.Run(); err == nil && uerr != nil {
			err = uerr
		}
	}()
	qmpPath, ln, err := d.makeInstanceDir(inst, fmt.Sprintf("floor-%d", i))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	args := append(d.machineArgs(accel, guestMiB(d.cfg.MemoryMiB, 0)), "-S")
	cmd := exec.Command(d.cfg.Binary, args...)
	cmd.ExtraFiles = []*os.File{ln}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("qemu: bare start: %w", err)
	}
	inst.undo.Push(func() error {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil
	})
	qctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	mon, err := connectQMP(qctx, qmpPath)
	if err != nil {
		return 0, fmt.Errorf("qemu: bare start: %w", err)
	}
	took := time.Since(begin)
	_ = mon.quit(qctx)
	mon.close()
	return took, nil
}
