package qemu

import (
	"strings"

	"virtbench/drivers"
	"virtbench/guest"
)

// ColdGuest is what one cold-booted VM of a configuration boots, for a
// program other than this driver to start QEMU with (drivers/libvirt):
// the same kernel, initramfs, kernel command line and disks as this
// driver's own command line gives it.
type ColdGuest struct {
	// Kernel is the uncompressed vmlinux; Initrd the initramfs whose
	// /init is the agent.
	Kernel, Initrd string
	// Cmdline is the kernel command line, with the agent's arguments and
	// nonce.
	Cmdline string
	// Disk is the instance's qcow2 overlay (in the directory ColdGuest was
	// given), or "" when its workload uses no disk; the guest's root with
	// image=debian.
	Disk string
	// Tools is the tools layer's raw disk, read-only and shared by every
	// VM, or "" when the workload needs none.
	Tools string
	// RAMBytes is the guest's RAM.
	RAMBytes int64
}

// Config returns the driver's configuration.
func (d *Driver) Config() Config { return d.cfg }

// ColdGuest prepares a cold boot of spec's workload on accelerator accel
// (Accel's answer): it builds the images once, checks that the agent's
// arguments fit the kernel command line, and makes the instance's disk
// overlay in dir when the VM has a disk. Network and snapshots are this
// driver's own: the guest has no NIC. Removing dir removes what it made.
func (d *Driver) ColdGuest(dir, accel string, spec drivers.Spec, nonce guest.Nonce) (ColdGuest, error) {
	if err := d.images(); err != nil {
		return ColdGuest{}, err
	}
	args := append([]string{spec.Workload}, spec.Args...)
	if err := d.CheckArgs(args); err != nil {
		return ColdGuest{}, err
	}
	g := ColdGuest{Kernel: d.kernel.Vmlinux, Initrd: d.initrd.Path, RAMBytes: int64(guestMiB(d.cfg.MemoryMiB, spec.MemoryBytes)) << 20}
	if usesDisk(spec.Workload) || d.debianDisk != "" {
		disk, err := d.overlay(dir)
		if err != nil {
			return ColdGuest{}, err
		}
		g.Disk = disk
	}
	tools, err := d.toolsFor(spec.Workload, cold)
	if err != nil {
		return ColdGuest{}, err
	}
	g.Tools = tools
	g.Cmdline = strings.Join(d.kernelCmdline(vmPlan{mode: cold, accel: accel, disk: g.Disk, tools: g.Tools, agentArgs: args, nonce: nonce}), " ")
	return g, nil
}
