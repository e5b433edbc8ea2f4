package qemu

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"virtbench/drivers"
	"virtbench/guest"
	"virtbench/guest/vminit"
	"virtbench/images"
	"virtbench/internal/results"
)

// A VM starts in one of three ways, each a named list of steps built from
// the same pieces (as firecracker-go-sdk builds its cold boot and its
// snapshot load from one set of handlers):
//
//	coldBoot     the kernel boots with the workload on its command line
//	templateBoot the kernel boots and waits for a workload, to be saved
//	restoreBoot  QEMU loads the saved template, then the workload comes
//	             on the console
//
// Each step adds to a booting: the plan of what the VM gets (vmPlan) and
// what QEMU inherits. What a step makes it pushes on the instance's undo
// stack, so a failed start undoes the steps before it in reverse.
var (
	coldBoot     = []bootStep{stepAccel, stepArgs, stepInstanceDir, stepDisk, stepTools, stepService, stepNetwork, stepVMM}
	templateBoot = []bootStep{stepAccel, stepInstanceDir, stepDisk, stepTools, stepService, stepNetwork, stepVMM}
	restoreBoot  = []bootStep{stepAccel, stepArgs, stepInstanceDir, stepDisk, stepTools, stepService, stepNetwork, stepWorkloadLine, stepVMM}
)

// steps returns the boot of mode m.
func (m mode) steps() []bootStep {
	switch m {
	case template:
		return templateBoot
	case restore:
		return restoreBoot
	case firmware:
		return imageBoot
	}
	return coldBoot
}

// bootStep is one named step of a VM's start.
type bootStep struct {
	name string
	run  func(d *Driver, b *booting) error
}

// booting is a VM's start in progress.
type booting struct {
	begin time.Time
	spec  drivers.Spec
	inst  *instance
	plan  vmPlan
	// qmpPath is the QMP socket's path; extra are the files QEMU
	// inherits, from fd 3 (the QMP listening socket, then a tap).
	qmpPath string
	extra   []*os.File
}

// vmPlan is what one VM boots with: what commandLine and kernelCmdline
// turn into QEMU's arguments and the kernel's.
type vmPlan struct {
	mode   mode
	accel  string
	memMiB int
	// disk is the instance's qcow2 overlay; tools the shared tools disk;
	// service a service's root disk (Kata-style); each "" where none.
	disk, tools, service string
	// ip is the guest's address/prefix on the tap at fd 4, or "".
	ip string
	// agentArgs are the agent's workload and flags; nonce marks its lines.
	agentArgs []string
	nonce     guest.Nonce
	// ramFile, with boot=template, is the template's RAM file the VM
	// shares (the template) or maps copy-on-write (its clones).
	ramFile string
	// seed, in firmware mode, is the NoCloud seed's disk; mac the NIC's
	// address it names.
	seed, mac string
}

// disks counts the VM's disks.
func (p vmPlan) disks() int {
	n := 0
	for _, d := range []string{p.disk, p.tools, p.service, p.seed} {
		if d != "" {
			n++
		}
	}
	return n
}

// launch starts QEMU for an instance in mode m, step by step: t is the
// template being made (template) or restored (restore); nil for a cold
// boot.
func (d *Driver) launch(begin time.Time, spec drivers.Spec, m mode, t *vmTemplate) (_ *instance, err error) {
	b := &booting{begin: begin, spec: spec, plan: vmPlan{mode: m, nonce: guest.NewNonce()},
		inst: &instance{id: spec.ID, mode: m, begin: begin, vmReady: make(chan struct{}), waiting: make(chan struct{})}}
	if t != nil {
		b.plan.ramFile, b.inst.ramFile = t.ramFile, t.ramFile
		b.inst.incoming = "exec:cat " + t.file // restore only: a template's file is not made yet
	}
	defer b.inst.undo.OnError(&err)
	defer func() {
		for _, f := range b.extra {
			f.Close() // QEMU's copies stay open; they go when it exits
		}
	}()
	for _, s := range m.steps() {
		if err := s.run(d, b); err != nil {
			return nil, err
		}
	}
	return b.inst, nil
}

var stepAccel = bootStep{"accel", func(d *Driver, b *booting) (err error) {
	b.plan.accel, err = d.Accel()
	b.plan.memMiB = guestMiB(d.cfg.MemoryMiB, b.spec.MemoryBytes)
	b.inst.ramBytes = int64(b.plan.memMiB) << 20
	return err
}}

// stepArgs makes the agent's arguments: a service's workload runs its
// command in the service's root (vminit.ServiceRoot) and stays its parent,
// as PID 1 must.
var stepArgs = bootStep{"args", func(d *Driver, b *booting) error {
	args := []string{b.spec.Workload}
	if b.spec.Image != nil {
		args = append(args, "-root", vminit.ServiceRoot, "-keep")
	}
	b.plan.agentArgs = append(args, b.spec.Args...)
	return d.CheckArgs(b.plan.agentArgs)
}}

var stepInstanceDir = bootStep{"instance directory", func(d *Driver, b *booting) error {
	qmpPath, ln, err := d.makeInstanceDir(b.inst, drivers.SafeName(b.spec.ID))
	if err != nil {
		return err
	}
	b.qmpPath, b.extra = qmpPath, append(b.extra, ln) // fd 3
	return nil
}}

// stepDisk gives the VM its overlay of the base disk where its workload
// uses one or it is a full OS; a snapshot's VMs all have one, since a
// restored VM's devices are its template's.
var stepDisk = bootStep{"disk", func(d *Driver, b *booting) error {
	if !usesDisk(b.spec.Workload) && d.debianDisk == "" && b.plan.mode == cold {
		return nil
	}
	if err := d.makeDisk(b.inst); err != nil {
		return err
	}
	b.plan.disk = b.inst.disk
	return nil
}}

var stepTools = bootStep{"tools", func(d *Driver, b *booting) (err error) {
	b.plan.tools, err = d.toolsFor(b.spec.Workload, b.plan.mode)
	return err
}}

// stepService attaches a service's root as a read-only disk, made once
// per image, which the guest's init serves under vminit.ServiceRoot.
var stepService = bootStep{"service", func(d *Driver, b *booting) (err error) {
	if b.spec.Image == nil {
		return nil
	}
	if d.debianDisk != "" {
		return fmt.Errorf("qemu: a service runs with image=minimal (Kata-style: its root under virtbench's kernel and init)")
	}
	b.plan.service, err = images.BuildServiceDisk(d.env.CacheDir, *b.spec.Image)
	return err
}}

// stepNetwork gives the VM a NIC on a tap with network=tap, and always to
// a service, for the host's probe.
var stepNetwork = bootStep{"network", func(d *Driver, b *booting) error {
	if d.cfg.Network != "tap" && b.spec.Image == nil {
		return nil
	}
	tap, ip, err := d.network(b.inst)
	if err != nil {
		return err
	}
	b.plan.ip, b.extra = ip, append(b.extra, tap) // fd 4
	return nil
}}

// stepWorkloadLine makes the console line a restored VM gets once it runs
// again.
var stepWorkloadLine = bootStep{"workload line", func(d *Driver, b *booting) (err error) {
	b.inst.workload, err = restoreWorkload(b.plan.agentArgs, b.plan.nonce, b.plan.ip, usesDisk(b.spec.Workload))
	return err
}}

var stepVMM = bootStep{"vmm", func(d *Driver, b *booting) error {
	qargs := d.commandLine(b.plan)
	if b.plan.mode == restore {
		qargs = append(qargs, "-incoming", "defer")
	}
	if err := d.startVMM(b.inst, b.begin, qargs, b.extra, b.plan.nonce); err != nil {
		return err
	}
	b.inst.labels = map[string]string{LabelMachine: d.cfg.Machine, LabelDevices: d.cfg.Devices, LabelImage: d.cfg.Image, LabelAccelRequested: d.cfg.Accel, LabelBoot: d.cfg.Boot}
	if b.plan.mode == firmware {
		b.inst.labels[LabelImage] = drivers.ImageVMImage
	}
	if b.plan.accel == results.AccelTCG {
		b.inst.labels[LabelTBSize] = strconv.Itoa(d.cfg.TBSizeMiB)
	}
	go b.inst.watchVMM(b.qmpPath, b.plan.accel)
	return nil
}}
