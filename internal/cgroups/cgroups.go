// Package cgroups creates and removes per-instance cgroups beneath
// virtbench's own cgroup, on cgroup v1 (legacy or hybrid) and v2 (unified).
//
// It never creates a cgroup at a hierarchy's root and never changes a
// cgroup it did not create: each instance gets OWN/virtbench.RUN/ID, where
// OWN is the calling process's cgroup (see Own). The one write
// outside those is SpawnInside returning virtbench's own spawner thread to
// the cgroup it came from.
package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"virtbench/internal/cgroupfs"
)

// Root is where cgroup hierarchies are mounted.
const Root = "/sys/fs/cgroup"

// v1Controllers are the v1 hierarchies an instance joins.
var v1Controllers = []string{"memory", "cpu", "pids"}

// Limits are an instance's resource limits; zero values mean no limit.
type Limits struct {
	MemoryBytes int64
	// CPUs is a CPU quota in CPUs (1.5 = 150ms per 100ms period).
	CPUs float64
	// Pids limits the number of tasks.
	Pids int64
}

// Cgroup is one instance's cgroup (a directory per v1 hierarchy, or one v2
// directory).
type Cgroup struct {
	v2    bool
	paths []string // the instance directories, one per hierarchy
	// parents are the per-run directories created above paths, removed
	// when they become empty.
	parents []string
	// Path is the v2 directory, or the v1 memory directory.
	Path string
}

// Version returns 2 on a unified hierarchy and 1 otherwise.
func Version() int {
	if _, err := os.Stat(filepath.Join(Root, "cgroup.controllers")); err == nil {
		return 2
	}
	return 1
}

// Hybrid reports whether this is a hybrid host: cgroup v1 controllers
// beside a v2 hierarchy mounted at Root/unified (what systemd calls
// "hybrid" mode; crun 1.8 refuses it).
func Hybrid() bool {
	if Version() == 2 {
		return false
	}
	_, err := os.Stat(filepath.Join(Root, "unified", "cgroup.controllers"))
	return err == nil
}

// Own returns this process's cgroup path per v1 controller, and under the
// key "" the v2 path. It reads the calling thread's membership, not the
// process's (/proc/self/cgroup is the main thread's): while SpawnInside
// holds a thread in an instance's cgroup, that thread may be the main one,
// and an instance created then would nest inside another instance. The
// calling goroutine's thread is never one SpawnInside holds.
func Own() (map[string]string, error) { return parseMembership("/proc/thread-self/cgroup") }

// parseMembership reads a /proc/*/cgroup file into a map from controller
// (the v2 hierarchy as "") to cgroup path.
func parseMembership(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	defer f.Close()
	m, err := cgroupfs.Membership(f)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %s: %w", file, err)
	}
	return m, nil
}

// Planner plans the cgroups of one run's instances, OWN/virtbench.RUN/ID
// in each hierarchy, from one read of this process's membership (which
// does not change while it runs).
type Planner struct {
	parents []string // OWN/virtbench.RUN per hierarchy, memory's first on v1
}

// NewPlanner returns the planner of run's instances. run must be safe as
// a file name.
func NewPlanner(run string) (*Planner, error) {
	mine, err := Own()
	if err != nil {
		return nil, err
	}
	if Version() == 2 {
		return &Planner{parents: []string{filepath.Join(Root, mine[""], "virtbench."+run)}}, nil
	}
	p := &Planner{}
	for _, c := range v1Controllers {
		if rel, ok := mine[c]; ok {
			p.parents = append(p.parents, filepath.Join(Root, c, rel, "virtbench."+run))
		}
	}
	if len(p.parents) == 0 || !strings.HasPrefix(p.parents[0], filepath.Join(Root, "memory")+"/") {
		return nil, errors.New("cgroups: no v1 memory hierarchy mounted")
	}
	return p, nil
}

// Parents returns the run's parent directories, OWN/virtbench.RUN, one per
// hierarchy: Create makes them as needed, and Remove removes them once
// empty.
func (p *Planner) Parents() []string { return slices.Clone(p.parents) }

// Plan returns the directories Create makes for instance id, one per
// hierarchy, so that they can be recorded before they exist. id must be
// safe as a file name.
func (p *Planner) Plan(id string) []string {
	dirs := make([]string, len(p.parents))
	for i, parent := range p.parents {
		dirs[i] = filepath.Join(parent, id)
	}
	return dirs
}

// Create creates the directories Planner.Plan returned and applies limits. On
// error nothing is left.
func Create(dirs []string, l Limits) (*Cgroup, error) {
	cg := &Cgroup{v2: Version() == 2, Path: dirs[0]}
	for _, d := range dirs {
		if err := cg.mkdirs(filepath.Dir(d), d); err != nil {
			cg.Remove()
			return nil, err
		}
	}
	if cg.v2 {
		if err := enableV2(filepath.Dir(cg.Path)); err != nil {
			cg.Remove()
			return nil, err
		}
	}
	if err := cg.apply(l); err != nil {
		cg.Remove()
		return nil, err
	}
	return cg, nil
}

// mkdirs creates parent (shared by the run's instances, removed when empty)
// if needed, then dir. It retries when another instance removes the empty
// parent in between.
func (cg *Cgroup) mkdirs(parent, dir string) error {
	for try := 0; ; try++ {
		if err := os.Mkdir(parent, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("cgroups: %w", err)
		}
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			cg.parents = append(cg.parents, parent)
			cg.paths = append(cg.paths, dir)
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) || try == 3 {
			return fmt.Errorf("cgroups: %w", err)
		}
	}
}

// enableV2 turns on the memory, cpu and pids controllers for parent's
// children, as far as the parent's own parent delegates them.
func enableV2(parent string) error {
	avail, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	var want []string
	for _, c := range strings.Fields(string(avail)) {
		if c == "memory" || c == "cpu" || c == "pids" {
			want = append(want, "+"+c)
		}
	}
	if len(want) == 0 {
		return nil
	}
	if err := os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte(strings.Join(want, " ")), 0); err != nil {
		return fmt.Errorf("cgroups: enable %v in %s: %w", want, parent, err)
	}
	return nil
}

func write(dir, file, value string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0); err != nil {
		return fmt.Errorf("cgroups: write %s: %w", filepath.Join(dir, file), err)
	}
	return nil
}

func (cg *Cgroup) apply(l Limits) error {
	if l.Pids == 0 {
		l.Pids = -1
	}
	if cg.v2 {
		var errs []error
		if l.MemoryBytes > 0 {
			errs = append(errs, write(cg.Path, "memory.max", strconv.FormatInt(l.MemoryBytes, 10)))
			// Without swap accounting a limited cgroup swaps instead of OOM-killing.
			if _, err := os.Stat(filepath.Join(cg.Path, "memory.swap.max")); err == nil {
				errs = append(errs, write(cg.Path, "memory.swap.max", "0"))
			}
		}
		if l.Pids > 0 {
			errs = append(errs, write(cg.Path, "pids.max", strconv.FormatInt(l.Pids, 10)))
		}
		if l.CPUs > 0 {
			errs = append(errs, write(cg.Path, "cpu.max", fmt.Sprintf("%d 100000", int64(l.CPUs*100000))))
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("%w (are the memory, pids and cpu controllers delegated to virtbench's cgroup? e.g. run it under systemd-run --scope -p Delegate=yes)", err)
		}
		return nil
	}
	for _, p := range cg.paths {
		var err error
		switch {
		case strings.HasPrefix(p, filepath.Join(Root, "memory")+"/") && l.MemoryBytes > 0:
			err = write(p, "memory.limit_in_bytes", strconv.FormatInt(l.MemoryBytes, 10))
			if err == nil {
				if _, serr := os.Stat(filepath.Join(p, "memory.memsw.limit_in_bytes")); serr == nil {
					err = write(p, "memory.memsw.limit_in_bytes", strconv.FormatInt(l.MemoryBytes, 10))
				}
			}
		case strings.HasPrefix(p, filepath.Join(Root, "pids")+"/") && l.Pids > 0:
			err = write(p, "pids.max", strconv.FormatInt(l.Pids, 10))
		case strings.HasPrefix(p, filepath.Join(Root, "cpu")+"/") && l.CPUs > 0:
			err = write(p, "cpu.cfs_quota_us", strconv.FormatInt(int64(l.CPUs*100000), 10))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Dirs returns the directories the cgroup path rel (as in an OCI
// cgroupsPath) has in every mounted hierarchy: an OCI runtime joins them all.
func Dirs(rel string) []string {
	if Version() == 2 {
		return []string{filepath.Join(Root, rel)}
	}
	entries, _ := os.ReadDir(Root)
	var dirs []string
	for _, e := range entries {
		dirs = append(dirs, filepath.Join(Root, e.Name(), rel))
	}
	return dirs
}

// Dir returns the v2 directory (for CLONE_INTO_CGROUP), or "" on v1.
func (cg *Cgroup) Dir() string {
	if cg.v2 {
		return cg.Path
	}
	return ""
}

// SpawnInside runs spawn while the calling OS thread is in the cgroup, so
// that every process spawn forks is born in it, then moves the thread back
// to the cgroups it came from. It is for cgroup v1 (on v2, fork straight
// into Dir with CLONE_INTO_CGROUP); the caller must hold its goroutine on
// its thread (runtime.LockOSThread).
//
// A thread that moves itself (0 written to tasks) skips the kernel's
// global threadgroup lock, whose first taking costs an RCU grace period;
// moving a process by PID through cgroup.procs costs 5-20 ms on a v1 host.
// The way back writes only the thread's own ID into the cgroups it was in.
func (cg *Cgroup) SpawnInside(spawn func() error) (err error) {
	if cg.v2 {
		return errors.New("cgroups: SpawnInside is for cgroup v1; on v2 clone into Dir()")
	}
	from, err := parseMembership("/proc/thread-self/cgroup")
	if err != nil {
		return err
	}
	var back []string
	defer func() {
		for _, d := range back {
			if werr := write(d, "tasks", "0"); werr != nil && err == nil {
				err = fmt.Errorf("cgroups: spawner thread could not return: %w", werr)
			}
		}
	}()
	for _, p := range cg.paths {
		rel, _ := strings.CutPrefix(p, Root+"/")
		c, _, _ := strings.Cut(rel, "/")
		if err := write(p, "tasks", "0"); err != nil {
			return err
		}
		back = append(back, filepath.Join(Root, c, from[c]))
	}
	return spawn()
}

// MemoryBytes returns the memory charged to the cgroup without page cache:
// usage minus (total_)cache on v1, memory.current minus file on v2.
func (cg *Cgroup) MemoryBytes() (int64, error) {
	usageFile, cacheKey := "memory.usage_in_bytes", "total_cache"
	if cg.v2 {
		usageFile, cacheKey = "memory.current", "file"
	}
	b, err := os.ReadFile(filepath.Join(cg.Path, usageFile))
	if err != nil {
		return 0, fmt.Errorf("cgroups: %w", err)
	}
	usage, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroups: %s: %w", usageFile, err)
	}
	cache, err := statValue(filepath.Join(cg.Path, "memory.stat"), cacheKey)
	if err != nil {
		return 0, err
	}
	return usage - cache, nil
}

// OOMKilled reports whether the memory limit killed a task of the cgroup.
func (cg *Cgroup) OOMKilled() bool {
	if cg.v2 {
		n, err := statValue(filepath.Join(cg.Path, "memory.events"), "oom_kill")
		return err == nil && n > 0
	}
	n, err := statValue(filepath.Join(cg.Path, "memory.oom_control"), "oom_kill")
	if err == nil && n > 0 {
		return true
	}
	b, err := os.ReadFile(filepath.Join(cg.Path, "memory.failcnt"))
	return err == nil && strings.TrimSpace(string(b)) != "0"
}

func statValue(file, key string) (int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, fmt.Errorf("cgroups: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("cgroups: no %s in %s", key, file)
}

// RuntimePath returns the cgroup path, relative to each hierarchy's root,
// that a runtime is given for instance id of run (an OCI cgroupsPath, a
// cgroup parent): OWN/virtbench.RUN/ID, beneath virtbench's own memory
// cgroup, as Planner plans. On v1 the runtime uses the one path in every
// hierarchy. An empty id gives the run's parent, OWN/virtbench.RUN.
func RuntimePath(run, id string) (string, error) {
	own, err := Own()
	if err != nil {
		return "", err
	}
	base := own["memory"]
	if Version() == 2 {
		base = own[""]
	}
	return filepath.Join("/", base, "virtbench."+run, id), nil
}

// Remove deletes the instance directories, and the per-run parents when
// they are empty. The cgroup must have no tasks left; Remove retries for a
// short while because a killed task leaves its cgroup asynchronously.
func (cg *Cgroup) Remove() error {
	var errs []error
	for _, p := range cg.paths {
		var err error
		for i := 0; i < 100; i++ {
			err = os.Remove(p)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				err = nil
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cgroups: %w", err))
		}
	}
	cg.paths = nil
	for _, p := range cg.parents {
		os.Remove(p) // fails while other instances of the run still use it
	}
	cg.parents = nil
	return errors.Join(errs...)
}

// RemovePath removes the cgroup directory rel (a path relative to each
// hierarchy's root, as in an OCI cgroupsPath) from every hierarchy that
// has it. It is for cgroups a runtime created at virtbench's request; a
// missing or still busy directory is not an error for parents, only for
// the leaf, which is retried briefly.
func RemovePath(rel string) error { return RemoveDirs(Dirs(rel)) }

// RemoveDirs removes the cgroup directories dirs, as RemovePath does.
func RemoveDirs(dirs []string) error {
	var errs []error
	for _, d := range dirs {
		var err error
		for i := 0; i < 50; i++ {
			if err = os.Remove(d); err == nil || errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTEMPTY) {
				err = nil
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cgroups: %w", err))
		}
	}
	return errors.Join(errs...)
}

// RemoveTrees removes the cgroup directories dirs with every cgroup
// beneath them, deepest first (those a system container's systemd makes),
// as RemoveDirs does.
func RemoveTrees(dirs []string) error {
	var all []string
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				all = append(all, p)
			}
			return nil
		})
	}
	slices.Reverse(all) // a directory after those beneath it
	return RemoveDirs(all)
}

// OwnDirs returns the directories that rel names beneath this process's
// own cgroup in every mounted hierarchy: where a runtime told to place its
// cgroups relative to its caller's (LXC's lxc.cgroup.relative) makes them.
func OwnDirs(rel string) ([]string, error) {
	mine, err := Own()
	if err != nil {
		return nil, err
	}
	if Version() == 2 {
		return []string{filepath.Join(Root, mine[""], rel)}, nil
	}
	entries, err := os.ReadDir(Root)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	var dirs []string
	for _, e := range entries {
		key, _, _ := strings.Cut(e.Name(), ",")
		switch key {
		case "unified":
			key = ""
		case "systemd":
			key = "name=systemd"
		}
		if own, ok := mine[key]; ok {
			dirs = append(dirs, filepath.Join(Root, e.Name(), own, rel))
		}
	}
	return dirs, nil
}

// Procs returns the processes in the cgroup path rel (as in an OCI
// cgroupsPath): in the memory hierarchy on v1, the unified one on v2.
func Procs(rel string) ([]int32, error) {
	b, err := os.ReadFile(filepath.Join(memoryDir(rel), "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	return parsePids(b), nil
}

// TreeProcs returns the processes in the cgroup path rel and every cgroup
// beneath it (a system container's, whose systemd makes its own). A cgroup
// removed while it is read (a finished unit's) is skipped.
func TreeProcs(rel string) ([]int32, error) {
	pids, err := treeProcs(os.DirFS(memoryDir(rel)))
	if err != nil {
		return nil, fmt.Errorf("cgroups: %s: %w", rel, err)
	}
	return pids, nil
}

// treeProcs returns the processes in every cgroup.procs file of fsys.
func treeProcs(fsys fs.FS) ([]int32, error) {
	var pids []int32
	err := fs.WalkDir(fsys, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p != "." && errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if e.IsDir() || e.Name() != "cgroup.procs" {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil // removed while walking
		}
		pids = append(pids, parsePids(b)...)
		return nil
	})
	return pids, err
}

// memoryDir is the directory of the cgroup path rel where its processes
// are read: the memory hierarchy's on v1, the unified one on v2.
func memoryDir(rel string) string {
	if Version() != 2 {
		return filepath.Join(Root, "memory", rel)
	}
	return filepath.Join(Root, rel)
}

// parsePids parses a cgroup.procs file.
func parsePids(b []byte) []int32 {
	var pids []int32
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.ParseInt(f, 10, 32); err == nil {
			pids = append(pids, int32(n))
		}
	}
	return pids
}

// Add moves process pid, with all its threads, into the cgroup, in every
// hierarchy.
func (cg *Cgroup) Add(pid int) error {
	for _, p := range cg.paths {
		if err := write(p, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}
