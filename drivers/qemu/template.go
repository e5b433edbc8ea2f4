package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"virtbench/drivers"
	"virtbench/images"
)

// SnapshotTimeout bounds making a snapshot: booting the template and
// saving it.
const SnapshotTimeout = 3 * time.Minute

// vmTemplate is a saved VM that VMs of boot=snapshot or template start
// from. A restored VM's devices are its template's, so there is one per
// service disk: the agent's workloads share the one without.
type vmTemplate struct {
	made chan struct{} // closed once made, or failed
	err  error
	// file is the saved state; took what making it took, bytes its size.
	file  string
	took  time.Duration
	bytes int64
	// ramFile, with boot=template, is the template's RAM in the state
	// directory; ramBytes the bytes the host holds of it.
	ramFile  string
	ramBytes int64
}

// PrepareService makes, with boot=snapshot or template, the template the
// service's VMs start from, before any of them does (bench calls it once
// per service a variant runs).
func (d *Driver) PrepareService(svc *images.Service) error {
	if d.cfg.Boot == BootCold {
		return nil
	}
	_, err := d.template(svc)
	return err
}

// template returns the template of VMs with the service's disk (svc nil:
// none), making it the first time (makeTemplate).
func (d *Driver) template(svc *images.Service) (*vmTemplate, error) {
	key := ""
	if svc != nil {
		key = svc.Root
	}
	d.templatesMu.Lock()
	if d.templates == nil {
		d.templates = map[string]*vmTemplate{}
	}
	t, ok := d.templates[key]
	n := len(d.templates) // names the template's files
	if !ok {
		t = &vmTemplate{made: make(chan struct{})}
		if d.cfg.Boot == BootTemplate {
			t.ramFile = filepath.Join(d.env.StateDir, fmt.Sprintf("qemu-template-ram-%d", n))
		}
		d.templates[key] = t
	}
	d.templatesMu.Unlock()
	if !ok {
		t.err = d.makeTemplate(t, svc, n)
		d.templatesMu.Lock()
		if t.err == nil && d.first == nil {
			d.first = t
		}
		d.templatesMu.Unlock()
		close(t.made)
	}
	<-t.made
	return t, t.err
}

// makeTemplate makes t: a VM boots in template mode, its agent waits for
// a workload, and QEMU saves it stopped into a file in the run's state
// directory (removed with it). With boot=template the template's RAM is
// a file in the state directory too (share=on: its writes reach the file),
// and the snapshot leaves it out (x-ignore-shared): every VM maps that
// file copy-on-write instead of loading a copy.
func (d *Driver) makeTemplate(t *vmTemplate, svc *images.Service, n int) error {
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), SnapshotTimeout)
	defer cancel()
	inst, err := d.launch(begin, drivers.Spec{ID: fmt.Sprintf("snapshot-template-%d", n), Image: svc}, template, t)
	if err != nil {
		return fmt.Errorf("qemu: snapshot template: %w", err)
	}
	defer inst.Stop(context.WithoutCancel(ctx))
	select {
	case <-inst.waiting:
	case <-inst.p.Exited():
		return fmt.Errorf("qemu: snapshot template exited before it waited for a workload: %w", inst.p.ExitErr())
	case <-ctx.Done():
		return fmt.Errorf("qemu: snapshot template did not wait for a workload within %v", SnapshotTimeout)
	}
	<-inst.vmReady
	if inst.vmmErr != nil {
		return inst.vmmErr
	}
	f, err := os.CreateTemp(d.env.StateDir, "qemu-snapshot-")
	if err != nil {
		return fmt.Errorf("qemu: snapshot: %w", err)
	}
	f.Close()
	if err := inst.mon.save(ctx, f.Name(), t.ramFile != ""); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("qemu: snapshot: %w", err)
	}
	_ = inst.mon.quit(ctx)
	info, err := os.Stat(f.Name())
	if err != nil {
		return fmt.Errorf("qemu: snapshot: %w", err)
	}
	if t.ramFile != "" {
		if t.ramBytes, err = allocatedBytes(t.ramFile); err != nil {
			return fmt.Errorf("qemu: template: %w", err)
		}
	}
	t.file, t.took, t.bytes = f.Name(), time.Since(begin), info.Size()
	return nil
}

// Prepared reports, with boot=snapshot or template, how long making the
// first template took (booting it and saving it) and its size on disk;
// with template also its RAM file.
func (d *Driver) Prepared() []drivers.Measure {
	d.templatesMu.Lock()
	t := d.first
	d.templatesMu.Unlock()
	if t == nil {
		return nil
	}
	ms := []drivers.Measure{
		{Metric: MetricSnapshotCreate, Unit: "sec", Value: t.took.Seconds()},
		{Metric: MetricSnapshotBytes, Unit: "B", Value: float64(t.bytes)},
	}
	if t.ramFile != "" {
		ms = append(ms, drivers.Measure{Metric: MetricTemplateRAM, Unit: "B", Value: float64(t.ramBytes)})
	}
	return ms
}
