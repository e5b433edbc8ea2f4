package bench

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"virtbench/internal/cgroupfs"
)

// CgroupRoot is where the cgroup file systems are mounted.
const CgroupRoot = "/sys/fs/cgroup"

// cgroupDir is a cgroup's directory and the top of its hierarchy.
type cgroupDir struct{ Dir, Top string }

// cgroupDirs returns the directories, under root, of the cgroups that
// procCgroup (the content of /proc/PID/cgroup) lists: per v1 controller,
// root/CONTROLLER/PATH (a co-mounted hierarchy is reached by each of its
// names, as systemd links cpu and cpuacct to cpu,cpuacct), and, under "",
// the unified (v2) one where root is a v2 mount.
func cgroupDirs(root string, procCgroup io.Reader) map[string]cgroupDir {
	m, _ := cgroupfs.Membership(procCgroup)
	dirs := map[string]cgroupDir{}
	for c, path := range m {
		switch {
		case c != "":
			dirs[c] = cgroupDir{filepath.Join(root, c, path), filepath.Join(root, c)}
		case fileExists(filepath.Join(root, "cgroup.controllers")):
			dirs[""] = cgroupDir{filepath.Join(root, path), root}
		}
	}
	return dirs
}

// ownCgroupDirs returns cgroupDirs of the calling thread: the main thread
// may be in an instance's cgroup for a moment while it spawns one.
func ownCgroupDirs() map[string]cgroupDir {
	f, err := os.Open("/proc/thread-self/cgroup")
	if err != nil {
		return nil
	}
	defer f.Close()
	return cgroupDirs(CgroupRoot, f)
}

// ancestors returns the cgroup's directory and those above it, up to the
// top of its hierarchy, nearest first.
func (c cgroupDir) ancestors() []string {
	var out []string
	for d := c.Dir; strings.HasPrefix(d, c.Top); d = filepath.Dir(d) {
		out = append(out, d)
		if d == c.Top {
			break
		}
	}
	return out
}

// unlimitedMemory is where a v1 memory.limit_in_bytes means no limit (the
// kernel writes PAGE_COUNTER_MAX pages, about 2^63 bytes).
const unlimitedMemory = 1 << 60

// MemoryLimit is the memory limit of a cgroup: the smallest limit of the
// cgroup and its ancestors, where it is set, and what that cgroup uses
// (its working set: usage less inactive file pages, which the kernel
// reclaims before it enforces the limit).
type MemoryLimit struct {
	Bytes      int64
	At         string
	WorkingSet int64
}

// memoryLimit reads the memory limit of the cgroups in dirs (cgroupDirs),
// v1 memory controller or v2: the zero MemoryLimit where none is set.
func memoryLimit(dirs map[string]cgroupDir) MemoryLimit {
	limitFile, usageFile, inactive := "memory.max", "memory.current", "inactive_file"
	dir, ok := dirs[""]
	if d, v1 := dirs["memory"]; v1 {
		dir, ok = d, true
		limitFile, usageFile, inactive = "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"
	}
	if !ok {
		return MemoryLimit{}
	}
	var best MemoryLimit
	for _, d := range dir.ancestors() {
		n, err := strconv.ParseInt(readTrim(filepath.Join(d, limitFile), ""), 10, 64)
		if err != nil || n <= 0 || n >= unlimitedMemory || (best.Bytes > 0 && n >= best.Bytes) {
			continue // "max" (v2) does not parse: no limit
		}
		best = MemoryLimit{Bytes: n, At: d}
	}
	if best.Bytes == 0 {
		return best
	}
	usage, _ := strconv.ParseInt(readTrim(filepath.Join(best.At, usageFile), ""), 10, 64)
	best.WorkingSet = max(usage-statValue(filepath.Join(best.At, "memory.stat"), inactive), 0)
	return best
}

// statValue returns the value of key in a cgroup stat file ("KEY VALUE"
// lines), 0 when it is not there.
func statValue(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// cpuLimit returns the CPU quota, in cores, of the cgroups in dirs: the
// smallest of the cgroup's and its ancestors' (v1 cpu.cfs_quota_us over
// cpu.cfs_period_us, v2 cpu.max), and where it is set; 0 where none is.
// A cpuset is not read here: it limits the CPUs this process may run on,
// which runtime.NumCPU already counts.
func cpuLimit(dirs map[string]cgroupDir) (float64, string) {
	read := func(d string) float64 {
		q, p := readTrim(filepath.Join(d, "cpu.cfs_quota_us"), ""), readTrim(filepath.Join(d, "cpu.cfs_period_us"), "")
		return ratio(q, p)
	}
	dir, ok := dirs["cpu"]
	if !ok {
		if dir, ok = dirs[""]; !ok {
			return 0, ""
		}
		read = func(d string) float64 {
			q, p, _ := strings.Cut(readTrim(filepath.Join(d, "cpu.max"), ""), " ")
			return ratio(q, p)
		}
	}
	var best float64
	var at string
	for _, d := range dir.ancestors() {
		if c := read(d); c > 0 && (best == 0 || c < best) {
			best, at = c, d
		}
	}
	return best, at
}

// cgroupCPUSeconds returns the CPU time, in seconds, that the tasks of the
// cgroup at dir (and its descendants) have used: v2's cpu.stat usage_usec,
// or v1's cpuacct.usage in dir or, where cpuacct is mounted apart from
// cpu, in the same cgroup of the cpuacct hierarchy (the other of dirs).
func cgroupCPUSeconds(dir string, dirs map[string]cgroupDir) (float64, error) {
	if b, err := os.ReadFile(filepath.Join(dir, "cpu.stat")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
				us, err := strconv.ParseFloat(v, 64)
				return us / 1e6, err
			}
		}
	}
	candidates := []string{dir}
	if cpu, acct := dirs["cpu"], dirs["cpuacct"]; acct.Dir != "" && strings.HasPrefix(dir, cpu.Top) {
		candidates = append(candidates, filepath.Join(acct.Top, strings.TrimPrefix(dir, cpu.Top)))
	}
	for _, d := range candidates {
		if v := readTrim(filepath.Join(d, "cpuacct.usage"), ""); v != "" {
			ns, err := strconv.ParseFloat(v, 64)
			return ns / 1e9, err
		}
	}
	return 0, fmt.Errorf("bench: no CPU usage of the cgroup %s", dir)
}

// ratio returns quota/period for a quota and period in microseconds; 0
// for no quota ("max", -1) or what does not parse.
func ratio(quota, period string) float64 {
	q, err1 := strconv.ParseFloat(quota, 64)
	p, err2 := strconv.ParseFloat(period, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0
	}
	return q / p
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
