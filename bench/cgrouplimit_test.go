package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"virtbench/internal/required"
)

// writeTree writes files (path relative to root: content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCgroupLimits reads the memory limit and CPU quota of a process's
// cgroup from trees laid out as cgroup v1 (memory and cpu,cpuacct
// hierarchies) and v2 mounts: the smallest of the cgroup's and its
// parents', where it is set, and the limited cgroup's working set.
func TestCgroupLimits(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name      string
		files     map[string]string
		proc      string
		memory    MemoryLimit // At relative to the root
		cpu       float64
		cpuAt     string
		v2        bool
		noLimitAt string
	}{
		{
			name: "v1, the parent's memory limit and the cgroup's quota",
			files: map[string]string{
				"memory/pod/memory.limit_in_bytes":     "4294967296\n",
				"memory/pod/memory.usage_in_bytes":     "1073741824\n",
				"memory/pod/memory.stat":               "cache 10\ntotal_inactive_file 268435456\n",
				"memory/pod/vb/memory.limit_in_bytes":  "9223372036854771712\n",
				"cpu,cpuacct/pod/vb/cpu.cfs_quota_us":  "150000\n",
				"cpu,cpuacct/pod/vb/cpu.cfs_period_us": "100000\n",
				"cpu,cpuacct/pod/cpu.cfs_quota_us":     "-1\n",
				"cpu,cpuacct/pod/cpu.cfs_period_us":    "100000\n",
				"memory/memory.limit_in_bytes":         "9223372036854771712\n",
				"cpu,cpuacct/cpu.cfs_quota_us":         "-1\n",
				"cpu,cpuacct/cpu.cfs_period_us":        "100000\n",
				"pids/pod/vb/pids.max":                 "max\n",
			},
			proc:   "12:pids:/pod/vb\n5:memory:/pod/vb\n3:cpu,cpuacct:/pod/vb\n0::/pod/vb\n",
			memory: MemoryLimit{Bytes: 4 * gib, At: "memory/pod", WorkingSet: 768 << 20},
			cpu:    1.5, cpuAt: "cpu/pod/vb",
		},
		{
			name: "v2, the cgroup's memory.max and the parent's cpu.max",
			files: map[string]string{
				"cgroup.controllers":          "cpu memory pids\n",
				"kubepods/memory.max":         "max\n",
				"kubepods/cpu.max":            "200000 100000\n",
				"kubepods/pod/memory.max":     "2147483648\n",
				"kubepods/pod/cpu.max":        "max 100000\n",
				"kubepods/pod/memory.current": "536870912\n",
				"kubepods/pod/memory.stat":    "anon 1\ninactive_file 1048576\n",
			},
			proc:   "0::/kubepods/pod\n",
			memory: MemoryLimit{Bytes: 2 * gib, At: "kubepods/pod", WorkingSet: 511 << 20},
			cpu:    2, cpuAt: "kubepods",
			v2: true,
		},
		{
			name:  "v1 without limits",
			files: map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n", "cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},
			proc:  "5:memory:/\n3:cpu:/\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, tt.files)
			// As systemd mounts cpu,cpuacct: reached by each name.
			if _, err := os.Stat(filepath.Join(root, "cpu,cpuacct")); err == nil {
				os.Symlink("cpu,cpuacct", filepath.Join(root, "cpu"))
			}
			dirs := cgroupDirs(root, strings.NewReader(tt.proc))
			if _, ok := dirs[""]; ok != tt.v2 {
				t.Errorf("cgroupDirs = %v: a unified cgroup %v, want %v", dirs, ok, tt.v2)
			}
			want := tt.memory
			if want.At != "" {
				want.At = filepath.Join(root, want.At)
			}
			if got := memoryLimit(dirs); got != want {
				t.Errorf("memoryLimit = %+v, want %+v", got, want)
			}
			wantAt := ""
			if tt.cpuAt != "" {
				wantAt = filepath.Join(root, tt.cpuAt)
			}
			if cores, at := cpuLimit(dirs); cores != tt.cpu || at != wantAt {
				t.Errorf("cpuLimit = %v cores at %q, want %v at %q", cores, at, tt.cpu, wantAt)
			}
		})
	}
}

// cgroupChildEnv makes the test binary a child that joins the cgroups
// its value lists (colon-separated directories), prints HostLimitsNow and
// what SystemHost reads as JSON, and exits.
const cgroupChildEnv = "VIRTBENCH_TEST_CGROUPS"

// cgroupChild is what the child prints.
type cgroupChild struct {
	Limits              HostLimits
	MemTotal, Available int64
	// Cores and Busy are what SystemHost's CPU times say of half a second
	// in which the child kept a core busy: the cores used, and their
	// share of what it may use.
	Cores, Busy float64
}

func runCgroupChild(dirs string) {
	for _, d := range strings.Split(dirs, ":") {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	var c cgroupChild
	c.Limits = HostLimitsNow()
	c.MemTotal, _ = SystemHost{}.MemTotal(context.Background())
	c.Available, _ = SystemHost{}.MemAvailable(context.Background())
	busy0, total0, _ := SystemHost{}.CPUTimes(context.Background())
	begin := time.Now()
	for time.Since(begin) < 500*time.Millisecond {
	}
	busy1, total1, _ := SystemHost{}.CPUTimes(context.Background())
	c.Cores, c.Busy = (busy1-busy0)/time.Since(begin).Seconds(), busyFraction(busy0, total0, busy1, total1)
	json.NewEncoder(os.Stdout).Encode(c)
	os.Exit(0)
}

// TestRunsUnderCgroupLimits runs a process in cgroups made beneath this
// test's own (cgroup v1: a memory limit of 1 GiB and a CPU quota of half a
// core) and checks that it takes those as its budget: the memory it may
// use and has available, and its CPUs.
func TestRunsUnderCgroupLimits(t *testing.T) {
	if os.Geteuid() != 0 {
		required.Skip(t, "root", "needs root to make cgroups: run as root")
	}
	if fileExists(filepath.Join(CgroupRoot, "cgroup.controllers")) {
		// The v2 files are read in TestCgroupLimits, from a tree made for
		// it; a child cgroup of this test's own with controllers needs a
		// delegated subtree (no process in this test's cgroup).
		required.Skip(t, "cgroup-v1", "this host has cgroup v2 only: the v1 path runs on a v1 or hybrid host")
	}
	own := ownCgroupDirs()
	mem, okM := own["memory"]
	cpu, okC := own["cpu"]
	if !okM || !okC {
		required.Skip(t, "cgroup-v1", "no v1 memory or cpu controller mounted: mount them under /sys/fs/cgroup")
	}
	t.Log("cgroup v1: the limits are set in the memory and cpu hierarchies")
	name := fmt.Sprintf("virtbench-test-%d", os.Getpid())
	var made []string
	t.Cleanup(func() {
		for _, d := range made {
			if err := os.Remove(d); err != nil {
				t.Errorf("removing the test's cgroup: %v", err)
			}
		}
	})
	mk := func(parent, file, value string) string {
		d := filepath.Join(parent, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		made = append(made, d)
		if err := os.WriteFile(filepath.Join(d, file), []byte(value), 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	memDir := mk(mem.Dir, "memory.limit_in_bytes", "1073741824")
	cpuDir := mk(cpu.Dir, "cpu.cfs_quota_us", "50000")
	join := memDir + ":" + cpuDir
	if acct, ok := own["cpuacct"]; ok && acct.Top != cpu.Top {
		// cpuacct mounted apart: its twin of the quota's cgroup counts the
		// CPU time, as a container runtime makes one in each.
		rel := strings.TrimPrefix(cpu.Dir, cpu.Top)
		if strings.TrimPrefix(acct.Dir, acct.Top) != rel {
			required.Skip(t, "cgroup-v1", "this test's cpu and cpuacct cgroups differ: no twin of the quota's cgroup to count its CPU time in")
		}
		join += ":" + mk(acct.Dir, "notify_on_release", "0")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), cgroupChildEnv+"="+join)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var c cgroupChild
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("child said %q: %v", out, err)
	}
	l := c.Limits
	if l.Memory.Bytes != 1<<30 || l.Memory.At != memDir || l.MemoryBytes != 1<<30 || c.MemTotal != 1<<30 {
		t.Errorf("memory: limit %+v, budget %d, MemTotal %d; want 1 GiB set at %s", l.Memory, l.MemoryBytes, c.MemTotal, memDir)
	}
	if c.Available <= 0 || c.Available > 1<<30 {
		t.Errorf("MemAvailable in the cgroup %d, want at most the 1 GiB limit", c.Available)
	}
	if l.CPUs != 0.5 || l.CPULimitAt != cpuDir {
		t.Errorf("CPUs %v (limit at %q), want 0.5 set at %s", l.CPUs, l.CPULimitAt, cpuDir)
	}
	// Spinning, the child uses at most its half core (the host's other
	// CPUs, busy or not, are not its), most of what it may use.
	if c.Cores > 0.6 || c.Cores < 0.15 || c.Busy < 0.3 || c.Busy > 1.2 {
		t.Errorf("a spinning child under a half-core quota: %.2f cores, %.0f%% of its quota busy; want at most 0.5 cores, most of the quota", c.Cores, 100*c.Busy)
	}
}

// TestCgroupCPUSeconds reads a cgroup's CPU time: v2's cpu.stat, v1's
// cpuacct.usage beside the quota or in the cpuacct hierarchy's twin.
func TestCgroupCPUSeconds(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"v2/pod/cpu.stat":               "usage_usec 2500000\nuser_usec 2000000\n",
		"cpu,cpuacct/pod/cpuacct.usage": "1500000000\n",
		"cpu/pod/cpu.stat":              "nr_periods 3\n",
		"cpuacct/pod/cpuacct.usage":     "500000000\n",
	})
	apart := map[string]cgroupDir{"cpu": {filepath.Join(root, "cpu/pod"), filepath.Join(root, "cpu")}, "cpuacct": {filepath.Join(root, "cpuacct/pod"), filepath.Join(root, "cpuacct")}}
	for _, tt := range []struct {
		dir  string
		dirs map[string]cgroupDir
		want float64
	}{
		{"v2/pod", nil, 2.5},
		{"cpu,cpuacct/pod", nil, 1.5},
		{"cpu/pod", apart, 0.5},
	} {
		if got, err := cgroupCPUSeconds(filepath.Join(root, tt.dir), tt.dirs); err != nil || got != tt.want {
			t.Errorf("%s: %v, %v; want %v s", tt.dir, got, err, tt.want)
		}
	}
	if _, err := cgroupCPUSeconds(filepath.Join(root, "none"), nil); err == nil {
		t.Error("a cgroup without CPU accounting: no error")
	}
}
