package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"

	"virtbench/internal/kvm"
)

// Provenance describes the host and software a run measured.
type Provenance struct {
	Time          time.Time         `json:"time"`
	Hostname      string            `json:"hostname"`
	Kernel        string            `json:"kernel"`
	OS            string            `json:"os"`
	Virtualized   string            `json:"virtualization,omitempty"`
	CPUModel      string            `json:"cpu_model"`
	Cores         int               `json:"cores"`
	MemoryBytes   int64             `json:"memory_bytes"`
	CgroupVersion string            `json:"cgroup_version"`
	KSM           string            `json:"ksm"`
	KVM           string            `json:"kvm"`
	Tools         map[string]string `json:"tools"`
	Virtbench     string            `json:"virtbench_version"`
	Go            string            `json:"go_version"`
	Scenario      string            `json:"scenario,omitempty"`
	ScenarioHash  string            `json:"scenario_hash,omitempty"`
	ScenarioFile  string            `json:"scenario_source,omitempty"`
}

// Collect gathers provenance. Missing facts are recorded as "unknown" or
// "not found" rather than failing the run.
func Collect(ctx context.Context) Provenance {
	p := Provenance{
		Time:          time.Now().UTC(),
		Cores:         runtime.NumCPU(),
		CgroupVersion: CgroupVersion(),
		KSM:           readTrim("/sys/kernel/mm/ksm/run", "unknown"),
		KVM:           kvmState(),
		Tools:         map[string]string{},
		Virtbench:     Version(),
		Go:            runtime.Version(),
	}
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
	for name, args := range map[string][]string{
		"qemu":   {"qemu-system-x86_64", "--version"},
		"runc":   {"runc", "--version"},
		"crun":   {"crun", "--version"},
		"docker": {"docker", "version", "--format", "{{.Server.Version}}"},
	} {
		p.Tools[name] = toolVersion(ctx, args)
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
