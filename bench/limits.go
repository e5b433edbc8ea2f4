package bench

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/shirou/gopsutil/v4/disk"

	"virtbench/drivers"
	"virtbench/internal/results"
)

// bridgePorts is how many ports a Linux bridge takes (BR_MAX_PORTS).
const bridgePorts = 1 << 10

// linkAddresses is how many instances virtbench's subnet connects: a /30
// each in a /16 (vnet).
const linkAddresses = 1 << 14

// limitReading is one host limit read: what it allows and what is in use.
type limitReading struct {
	name         string
	budget, used float64
}

// readLimits reads every host limit results.HostLimits declares that this
// host has: memory through h (above the floor), the rest from the kernel
// and virtbench's own process; link_addresses counts the instances with
// a network path. A limit that cannot be read is left out.
func (sw *sweep) readLimits(ctx context.Context) []limitReading {
	var out []limitReading
	add := func(name string, budget, used float64) {
		if budget > 0 {
			out = append(out, limitReading{name, budget, used})
		}
	}
	if total, err := sw.h.MemTotal(ctx); err == nil {
		if avail, err := sw.h.MemAvailable(ctx); err == nil {
			add("memory", float64(total-sw.floor), float64(total-avail))
		}
	}
	tasks := float64(tasksInUse())
	add("pid_max", readNumber("/proc/sys/kernel/pid_max"), tasks)
	add("threads_max", readNumber("/proc/sys/kernel/threads-max"), tasks)
	if max, dir := cgroupPidsMax(); max > 0 {
		add("cgroup_pids", float64(max), readNumber(filepath.Join(dir, "pids.current")))
	}
	if f := strings.Fields(readTrim("/proc/sys/fs/file-nr", "")); len(f) == 3 {
		used, _ := strconv.ParseFloat(f[0], 64)
		budget, _ := strconv.ParseFloat(f[2], 64)
		add("file_max", budget, used)
	}
	var nofile syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile); err == nil {
		if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
			add("open_files", float64(nofile.Cur), float64(len(fds)))
		}
	}
	if ports := mostBridgePorts(); ports > 0 {
		add("bridge_ports", bridgePorts, float64(ports))
	}
	if arp := strings.Count(readTrim("/proc/net/arp", ""), "\n"); arp >= 0 {
		add("neighbours", readNumber("/proc/sys/net/ipv4/neigh/default/gc_thresh3"), float64(arp))
	}
	linked := 0
	for _, st := range sw.insts {
		if pr, ok := st.inst.(drivers.PeerRunner); ok && st.err == nil {
			if _, err := pr.PeerAddr("1"); err == nil {
				linked++
			}
		}
	}
	add("link_addresses", linkAddresses, float64(linked))
	if u, err := disk.UsageWithContext(ctx, sw.r.Env.StateDir); err == nil {
		add("disk", float64(u.Total), float64(u.Used))
	}
	return out
}

// recordLimits records the limits' readings (results.LimitBudgetPrefix,
// LimitUsedPrefix) at the sweep's present count.
func (sw *sweep) recordLimits(ctx context.Context) {
	for _, l := range sw.readLimits(ctx) {
		hl, _ := results.HostLimitOf(l.name)
		sw.t.record(results.Sample{Metric: results.LimitBudgetPrefix + l.name, Unit: hl.Unit, Value: l.budget})
		sw.t.record(results.Sample{Metric: results.LimitUsedPrefix + l.name, Unit: hl.Unit, Value: l.used})
	}
}

// mostBridgePorts returns the ports of the host's fullest Linux bridge,
// 0 where it has none.
func mostBridgePorts() int {
	bridges, _ := filepath.Glob("/sys/class/net/*/brif")
	most := 0
	for _, b := range bridges {
		if ports, err := os.ReadDir(b); err == nil {
			most = max(most, len(ports))
		}
	}
	return most
}

// readNumber reads a number from a file of one, 0 where it cannot.
func readNumber(path string) float64 {
	n, _ := strconv.ParseFloat(readTrim(path, ""), 64)
	return n
}
