// Package guest is the agent that runs inside every instance, and the line
// protocol it speaks to the host.
//
// The same static binary (cmd/virtbench-guest, built with CGO_ENABLED=0) runs
// as a native child process, as a container's init and as PID 1 of a VM's
// initramfs, so the only variable between drivers is the isolation layer.
//
// The agent prints one message per line on its console:
//
//	VIRTBENCH READY {"workload":"cpu","uptime_s":0.01}
//	VIRTBENCH RESULT {"name":"cpu.sha256","value":6012.5,"unit":"op/s"}
//	VIRTBENCH DONE {}
//	VIRTBENCH ERROR {"msg":"..."}
//
// READY means the workload can accept work (a server listens, a compute
// workload is about to start). Its uptime_s is the kernel's uptime; inside
// a VM it also carries vcpu_s, how long the virtual CPU had run (from its
// time-stamp counter), which counts the boot the kernel's clock misses. DONE follows the last RESULT of a workload
// that finishes; afterwards the agent waits until it is stopped, because as a
// VM's PID 1 it must not exit. Lines without the prefix (kernel messages on a
// serial console) are ignored by the host.
package guest
