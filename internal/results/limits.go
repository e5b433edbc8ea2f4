package results

import "strings"

// The samples of a host limit a density sweep read (HostLimits): what it
// allows (LimitBudgetPrefix) and what was in use
// (LimitUsedPrefix), before the sweep's first instance (0 instances) and
// at its top.
const (
	LimitBudgetPrefix = "limit_budget."
	LimitUsedPrefix   = "limit_used."
)

// HostLimit declares a limit of the host that can stop density before
// memory does: its name (the sample's after the prefix), its unit, what
// it is and how to raise it.
type HostLimit struct {
	Name, Unit, Doc, Raise string
}

// HostLimits are every limit a density sweep reads, in the order the
// report lists them where they allow as many.
var HostLimits = []HostLimit{
	{"memory", "B", "memory above the sweep's floor (MemAvailable)", "more memory, or fewer bytes per instance"},
	{"pid_max", "tasks", "process IDs (kernel.pid_max): every task, thread or process, takes one", "sysctl -w kernel.pid_max=4194304"},
	{"threads_max", "tasks", "tasks the kernel allows (kernel.threads-max)", "sysctl -w kernel.threads-max=N"},
	{"cgroup_pids", "tasks", "tasks virtbench's cgroup allows (pids.max)", "raise the pids.max of virtbench's cgroup (systemd: TasksMax=, Kubernetes: the pod's PID limit)"},
	{"file_max", "files", "open files the kernel allows (fs.file-max; in use: the first field of fs.file-nr)", "sysctl -w fs.file-max=N"},
	{"open_files", "files", "open files one process may hold (virtbench's RLIMIT_NOFILE; at most fs.nr_open)", "ulimit -n N (systemd: LimitNOFILE=), up to sysctl fs.nr_open"},
	{"bridge_ports", "ports", "ports of a Linux bridge the instances sit on (a bridge takes 1024)", "spread the instances over more bridges (another Docker network)"},
	{"neighbours", "entries", "the host namespace's neighbour (ARP) table (net.ipv4.neigh.default.gc_thresh3)", "sysctl -w net.ipv4.neigh.default.gc_thresh3=N (and gc_thresh1, gc_thresh2)"},
	{"link_addresses", "links", "point-to-point links virtbench's subnet holds (a /30 each in 10.213.0.0/16)", "fewer instances with a network path: the subnet is virtbench's own"},
	{"disk", "B", "free disk for the instances' writable layers", "more disk under virtbench's state directory (VIRTBENCH_STATE)"},
}

// HostLimitOf returns the declaration of a limit by name.
func HostLimitOf(name string) (HostLimit, bool) {
	for _, l := range HostLimits {
		if l.Name == name {
			return l, true
		}
	}
	return HostLimit{}, false
}

// limitKind returns the kind of a limit sample (LimitBudgetPrefix,
// LimitUsedPrefix).
func limitKind(metric string) (MetricKind, bool) {
	for _, p := range []string{LimitBudgetPrefix, LimitUsedPrefix} {
		if name, ok := strings.CutPrefix(metric, p); ok {
			if l, ok := HostLimitOf(name); ok {
				return MetricKind{Family: FamilyDensity, Unit: l.Unit, Better: NoBetter, Once: true, Doc: l.Doc}, true
			}
		}
	}
	return MetricKind{}, false
}
