// Package all registers every driver; import it for its side effect.
package all

import (
	_ "virtbench/drivers/container" // our own Linux container
	_ "virtbench/drivers/docker"    // Docker, through the local engine
	_ "virtbench/drivers/libvirt"   // QEMU VMs through libvirtd
	_ "virtbench/drivers/lxc"       // LXC application and system containers
	_ "virtbench/drivers/native"    // the baseline
	_ "virtbench/drivers/podman"    // Podman, daemonless
	_ "virtbench/drivers/qemu"      // QEMU VMs, KVM or TCG
	_ "virtbench/drivers/runc"      // runc and crun, peers of container; gvisor (runsc)
	_ "virtbench/drivers/wine"      // a Windows program under Wine
)
