package results

// Stage is one of the parts every start is made of, in this order. Each
// start phase belongs to one; the report stacks starts by stage.
type Stage int

const (
	// StageEngine is an engine's own work before the instance's process
	// exists (Docker's create).
	StageEngine Stage = iota
	// StageProcess ends when the instance's host process is up: the
	// agent exec'd, a runtime's container or a VMM running.
	StageProcess
	// StageRestore loads a saved VM's memory and devices.
	StageRestore
	// StageSetup is the isolated environment setting itself up inside the
	// instance before the workload: a container init's mounts, /dev,
	// network and privileges (a VM's guest boot is this stage too, measured
	// as guest_boot, not as phases).
	StageSetup
	// StageAgent is the agent from the end of the phases before it to
	// READY, less a VM's guest boot: the runner's phase "agent".
	StageAgent
	// StageService is a user's service from the agent's exec of it to the
	// host's first successful probe: the runner's phase "service".
	StageService
)

// String returns the stage as the report names it.
func (s Stage) String() string {
	switch s {
	case StageEngine:
		return "engine create (docker)"
	case StageProcess:
		return "process up: exec, runtime or VMM"
	case StageRestore:
		return "restore from a snapshot"
	case StageSetup:
		return "inside: guest boot or container setup"
	case StageAgent:
		return "agent (to READY)"
	case StageService:
		return "service (exec to the first successful probe)"
	}
	return "unknown stage"
}

// PhaseInfo declares a start phase. A driver names its phases in
// Readiness.Phases, each at its end; the runner records each as the
// sample phase.NAME, the time from the end of the phase before it (or
// from the start's beginning) to its own end, and the rest to READY, less
// a VM's guest boot (Readiness.GuestBoot), as phase.agent: the phases,
// the guest boot and the agent's phase add up to the start.
type PhaseInfo struct {
	Name  string
	Stage Stage
	Doc   string
}

// PhaseAgent is the phase the runner adds after a driver's phases: from the
// last of them to READY.
const PhaseAgent = "agent"

// PhaseService is the phase the runner adds after PhaseAgent for a
// service: from the agent's READY (it then execs the service) to the
// host's first successful readiness probe.
const PhaseService = "service"

// Phases are every start phase a driver reports, and PhaseAgent.
var Phases = []PhaseInfo{
	{"create", StageEngine, "docker: the engine created the container (POST /containers/create returned)"},
	{"define", StageEngine, "libvirt: libvirtd defined the domain (its XML checked and stored)"},
	{"exec", StageProcess, "native: fork and execve of the agent returned"},
	{"cgroup", StageProcess, "container: its cgroup made, with its limits"},
	{"clone", StageProcess, "container: clone(2) into new PID, mount, UTS, IPC and network namespaces, and execve of the agent, returned"},
	{"runtime", StageProcess, "runc, crun, gvisor, docker: the runtime's container process exists"},
	{"vmm", StageProcess, "qemu: QEMU answered on its monitor (QMP); libvirt: QEMU, spawned by libvirtd, connected its serial console (libvirtd holds the monitor)"},
	{"start", StageProcess, "libvirt: libvirtd's start returned: QEMU set up over QMP and its vCPUs let run"},
	{"restore", StageRestore, "qemu boot=snapshot: the saved VM loaded and running"},
	{"wake", StageRestore, "qemu boot=snapshot or template: the restored guest ran again and read the first byte of its workload line on the console"},
	{"console", StageSetup, "qemu boot=snapshot or template: the rest of the workload line (workload, address, entropy) read on the console"},
	{"vm_setup", StageSetup, "qemu boot=snapshot or template: the entropy credited, the NIC addressed, the disk or /tmp mounted"},
	{"go_start", StageSetup, "container: the agent's main began (execve's end and the Go runtime's start, which the native agent has too)"},
	{"config", StageSetup, "container: the init read its configuration, which the host sends once it has made the overlay's directories (meanwhile the init's runtime started)"},
	{"overlay", StageSetup, "container: the overlay root filesystem mounted"},
	{"proc", StageSetup, "container: /proc and a read-only /sys mounted"},
	{"dev", StageSetup, "container: a minimal /dev made (tmpfs, device nodes, devpts, shm)"},
	{"pivot_root", StageSetup, "container: the overlay made the root, the old root detached"},
	{"net", StageSetup, "container: hostname set, loopback up"},
	{"caps", StageSetup, "container: capabilities dropped to Docker's default set, no_new_privs"},
	{PhaseAgent, StageAgent, "every driver with phases: the agent from the last phase to READY, less a VM's guest boot"},
	{PhaseService, StageService, "a service: from the agent's exec of its command to the host's first successful readiness probe"},
}

// PhaseByName returns the declaration of a phase.
func PhaseByName(name string) (PhaseInfo, bool) {
	for _, p := range Phases {
		if p.Name == name {
			return p, true
		}
	}
	return PhaseInfo{}, false
}

// BootStage is a stage of a VM's boot (a BootMetricPrefix metric): its
// name, as the agent reports it, and what the time to it covers.
type BootStage struct {
	Name, Doc string
}

// BootStages are a VM boot's stages in the order they come. The agent
// names the same ones (guest.BootStages; a test keeps the two equal).
var BootStages = []BootStage{
	{"kernel", "before the kernel's clock: firmware, early boot"},
	{"clocksource", "to a real clocksource"},
	{"initramfs", "to the initramfs unpacked"},
	{"init", "to /init started"},
	{"setup", "to modules, disk and NIC ready"},
}
