package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"

	"virtbench/drivers"
	"virtbench/guest"
	"virtbench/internal/kvm"
	"virtbench/internal/results"
)

// Collect gathers provenance, with the versions of the tools that the
// named drivers run (drivers.Info.Tools). Missing facts are recorded as
// "unknown" or "not found" rather than failing the run.
func Collect(ctx context.Context, driverNames []string) results.Provenance {
	p := results.Provenance{
		Time:          time.Now().UTC(),
		Cores:         runtime.NumCPU(),
		CgroupVersion: CgroupVersion(),
		KSM:           readTrim("/sys/kernel/mm/ksm/run", "unknown"),
		KVM:           kvmState(),
		Mitigations:   guest.Mitigations(guest.VulnerabilitiesDir),
		Tools:         map[string]string{},
		Virtbench:     Version(),
		Go:            runtime.Version(),
	}
	p.PidsMax, p.TasksInUse = PidsMax(), tasksInUse()
	if h, err := host.InfoWithContext(ctx); err == nil {
		p.Hostname, p.Kernel = h.Hostname, h.KernelVersion
		p.OS = strings.TrimSpace(h.Platform + " " + h.PlatformVersion)
		p.Virtualized = strings.TrimSpace(h.VirtualizationSystem + " " + h.VirtualizationRole)
	}
	if cs, err := cpu.InfoWithContext(ctx); err == nil && len(cs) > 0 {
		p.CPUModel = cs[0].ModelName
	}
	if v, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		p.MemoryBytes = int64(v.Total)
	}
	p.MemAvailableBytes, _ = SystemHost{}.MemAvailable(ctx)
	l := HostLimitsNow()
	p.MemoryLimitBytes, p.MemoryLimitAt = l.Memory.Bytes, l.Memory.At
	if l.CPULimitAt != "" {
		p.CPULimitCores, p.CPULimitAt = l.CPUs, l.CPULimitAt
	}
	for _, d := range driverNames {
		info, err := drivers.Lookup(d)
		if err != nil {
			continue
		}
		for _, t := range info.Tools {
			if _, ok := p.Tools[t.Name]; !ok {
				p.Tools[t.Name] = toolVersion(ctx, t.Version)
			}
		}
	}
	return p
}

func toolVersion(ctx context.Context, args []string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).Output()
	if err != nil {
		if _, lookErr := exec.LookPath(args[0]); lookErr != nil {
			return "not found"
		}
		return "error: " + err.Error()
	}
	first, _, _ := bytes.Cut(bytes.TrimSpace(out), []byte("\n"))
	return string(first)
}

// PidsMax returns the smaller of kernel.pid_max and kernel.threads-max,
// or 0 when neither can be read.
func PidsMax() int64 {
	n, _ := kernelTasksLimit()
	return n
}

// kernelTasksLimit returns the smaller of kernel.pid_max and
// kernel.threads-max and its name, or 0 when neither can be read.
func kernelTasksLimit() (int64, string) {
	var lim int64
	var name string
	for _, f := range []string{"/proc/sys/kernel/pid_max", "/proc/sys/kernel/threads-max"} {
		n, err := strconv.ParseInt(readTrim(f, ""), 10, 64)
		if err == nil && n > 0 && (lim == 0 || n < lim) {
			lim, name = n, "kernel."+filepath.Base(f)
		}
	}
	return lim, name
}

// tasksInUse returns the number of tasks on the host, from the fourth
// field of /proc/loadavg ("running/total"), or 0.
func tasksInUse() int64 {
	f := strings.Fields(readTrim("/proc/loadavg", ""))
	if len(f) < 4 {
		return 0
	}
	_, total, _ := strings.Cut(f[3], "/")
	n, _ := strconv.ParseInt(total, 10, 64)
	return n
}

// DiskFree returns the free bytes of the filesystem holding path, or 0
// when it cannot be read.
func DiskFree(ctx context.Context, path string) int64 {
	n, _ := SystemHost{}.DiskFree(ctx, path)
	return n
}

func readTrim(path, def string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return def
	}
	return strings.TrimSpace(string(b))
}

func kvmState() string {
	if err := kvm.Check(); err != nil {
		return "unusable: " + err.Error()
	}
	return "usable"
}

// CgroupVersion returns "v2" on a unified hierarchy, "v1" on a legacy or
// hybrid one, and "none" when no cgroup filesystem is mounted.
func CgroupVersion() string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "v2"
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err == nil {
		return "v1"
	}
	return "none"
}

// version is set at link time by run.sh (-X virtbench/bench.version=…),
// for builds where the go command records no VCS information.
var version string

// Version returns virtbench's version: the one set at link time, else the
// VCS revision recorded by the go command (with "+dirty" for uncommitted
// changes), else the module version.
func Version() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return rev + modified
	}
	return bi.Main.Version
}
