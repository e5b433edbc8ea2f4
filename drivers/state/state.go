// Package state records what each instance created on the host, in the
// instance's directory inside the run's state directory, so that
// "virtbench clean" can remove what a killed virtbench left behind: it
// finds leftovers through these records and the state directories, never
// by matching the names of processes virtbench did not start.
//
// A run's state directory holds owner.json (the virtbench process that owns
// it) and one directory per running instance, each with record.json.
package state

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"virtbench/drivers/internal/libvirtd"
	"virtbench/internal/cgroups"
)

// Process identifies a process across PID reuse: its PID and its start
// time in clock ticks since boot (/proc/PID/stat field 22).
type Process struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// Runtime is an OCI runtime state root holding containers to delete.
// Clean runs only a runtime it knows by name (Runtimes), found on PATH, and
// only on a root inside the run's state directory: a record names no
// program to execute.
type Runtime struct {
	Binary string `json:"binary"`
	Root   string `json:"root"`
}

// Runtimes are the OCI runtimes a record may name.
var Runtimes = []string{"runc", "crun", "runsc"}

// Record lists what one instance created outside its own directory.
type Record struct {
	Driver    string    `json:"driver"`
	Processes []Process `json:"processes,omitempty"`
	// Cgroups are cgroup directories, deepest first.
	Cgroups []string `json:"cgroups,omitempty"`
	// Mounts are mount points in the host's mount namespace.
	Mounts   []string  `json:"mounts,omitempty"`
	Runtimes []Runtime `json:"runtimes,omitempty"`
	// Containers are engine containers, by name: Docker's, or Podman's in
	// the store Podman names.
	Containers []string     `json:"containers,omitempty"`
	Podman     *PodmanStore `json:"podman,omitempty"`
	// Domains are libvirt domains, by name, on the libvirtd serving
	// LibvirtSocket, each tagged as the run's (libvirtd.Tag).
	Domains       []string `json:"domains,omitempty"`
	LibvirtSocket string   `json:"libvirt_socket,omitempty"`
}

// PodmanStore is a Podman storage of virtbench's own, apart from the
// host's: images and containers in Root (in virtbench's cache), Podman's
// per-boot state in RunRoot and TmpDir (beneath HostRoot: Podman takes a
// run root of at most 50 characters).
type PodmanStore struct {
	Root    string `json:"root"`
	RunRoot string `json:"run_root"`
	TmpDir  string `json:"tmp_dir"`
	// Runtime is the OCI runtime Podman runs, one of Runtimes.
	Runtime string `json:"runtime"`
}

// Args returns the global options that make a podman command use the
// store: its directories, the runtime, cgroupfs (no systemd is assumed)
// and no event log.
func (s PodmanStore) Args() []string {
	return []string{"--root", s.Root, "--runroot", s.RunRoot, "--tmpdir", s.TmpDir, "--runtime", s.Runtime,
		"--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "none"}
}

// RecordFile is the name of an instance's record.
const RecordFile = "record.json"

// OwnerFile is the name of a run's owner record.
const OwnerFile = "owner.json"

// Owner identifies the virtbench process that owns a state directory.
type Owner struct {
	Process
	// RunDir is the run directory of the owning run, if any.
	RunDir string `json:"run_dir,omitempty"`
	// StateDir is the run's state directory, in a host-wide record of a
	// run (RegisterRun): where another run notes that it shared the host
	// (NoteConcurrent).
	StateDir string `json:"state_dir,omitempty"`
	// CgroupParents are the run's cgroup parents, OWN/virtbench.RUN in each
	// hierarchy, whose every child is an instance's cgroup: clean removes
	// them whether or not an instance recorded its own.
	CgroupParents []string `json:"cgroup_parents,omitempty"`
}

// Self returns the Process of the calling process.
func Self() (Process, error) { return Lookup(os.Getpid()) }

// Lookup returns pid's Process, with its start time.
func Lookup(pid int) (Process, error) {
	st, err := ReadStat(pid)
	if err != nil {
		return Process{}, err
	}
	return Process{Pid: pid, Start: st.Start}, nil
}

// ProcessOf returns pid's Process, or one that never matches a live process
// (start time 0) when pid has already exited: nothing is then left to kill.
func ProcessOf(pid int) Process {
	p, err := Lookup(pid)
	if err != nil {
		return Process{Pid: pid}
	}
	return p
}

// Alive reports whether p still runs (same PID, same start time, not a zombie).
func (p Process) Alive() bool {
	st, err := ReadStat(p.Pid)
	return err == nil && st.Start == p.Start && st.State != 'Z'
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// Write stores r in the instance directory dir.
func Write(dir string, r Record) error { return writeJSON(filepath.Join(dir, RecordFile), r) }

// Claim writes the owner record of a run's state directory.
func Claim(stateDir, runDir string) error {
	self, err := Self()
	if err != nil {
		return err
	}
	o := Owner{Process: self, RunDir: runDir}
	// Without cgroups (not root, none mounted) no driver makes any.
	if p, err := cgroups.NewPlanner(filepath.Base(stateDir)); err == nil {
		o.CgroupParents = p.Parents()
	}
	return writeJSON(filepath.Join(stateDir, OwnerFile), o)
}

// Orphan is the state directory of a run (from Orphans, one whose
// virtbench is gone).
type Orphan struct {
	Dir   string
	Owner Owner
}

// Orphans returns the run state directories under root whose owner no
// longer runs (or that never recorded one).
func Orphans(root string) ([]Orphan, error) {
	if err := CheckRoot(root); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var out []Orphan
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "run-") {
			continue
		}
		dir := filepath.Join(root, e.Name())
		var o Owner
		b, err := os.ReadFile(filepath.Join(dir, OwnerFile))
		alive := err == nil && json.Unmarshal(b, &o) == nil && o.Alive()
		if err != nil {
			if info, serr := e.Info(); serr == nil && time.Since(info.ModTime()) < time.Minute {
				continue // being created right now
			}
		}
		if !alive {
			out = append(out, Orphan{Dir: dir, Owner: o})
		}
	}
	return out, nil
}

// Clean removes everything an orphaned run recorded: it kills its
// processes (only those whose PID and start time match a record), deletes
// its runtimes' containers, unmounts its mounts and any mount under its
// state directory and removes its cgroups; the state directory stays for
// Remove. It returns what it did, one line per action.
func Clean(o Orphan) ([]string, error) {
	c := cleaner{dir: o.Dir}
	records := c.readRecords()
	for _, r := range records {
		c.removeDomains(r)
		c.removeContainers(r)
		c.deleteRuntimeContainers(r)
		c.killProcesses(r)
	}
	c.killCgroups(records)
	c.unmount(records)
	c.removeCgroups(records, o.Owner.CgroupParents)
	c.removeLXCLocks(records)
	return c.did, errors.Join(c.errs...)
}

// cleaner is one Clean of a run's state directory: what it did, one line
// each, and what failed.
type cleaner struct {
	dir  string
	did  []string
	errs []error
}

// readRecords reads the record of each instance directory.
func (c *cleaner) readRecords() []Record {
	instances, _ := os.ReadDir(c.dir)
	var records []Record
	for _, e := range instances {
		b, err := os.ReadFile(filepath.Join(c.dir, e.Name(), RecordFile))
		if err != nil {
			continue
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			c.errs = append(c.errs, fmt.Errorf("state: %s: %w", e.Name(), err))
			continue
		}
		records = append(records, r)
	}
	return records
}

// removeDomains destroys and undefines the record's libvirt domains that
// are tagged as this run's (libvirtd.Remove); a domain of that name that
// is not is left alone, and said so.
func (c *cleaner) removeDomains(r Record) {
	if len(r.Domains) == 0 {
		return
	}
	if !filepath.IsAbs(r.LibvirtSocket) {
		c.errs = append(c.errs, fmt.Errorf("state: %s: ignored a record of libvirt domains on socket %q: not an absolute path", c.dir, r.LibvirtSocket))
		return
	}
	l, err := libvirtd.Dial(r.LibvirtSocket)
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("state: %s: libvirt domains %v: %w", c.dir, r.Domains, err))
		return
	}
	defer l.Disconnect()
	for _, name := range r.Domains {
		removed, err := libvirtd.Remove(l, name, c.dir)
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("state: %w", err))
		}
		if removed {
			c.did = append(c.did, "removed libvirt domain "+name)
		}
	}
}

// removeContainers removes the record's containers: Docker's, or Podman's
// in a store of virtbench's (its per-boot state beneath HostRoot).
func (c *cleaner) removeContainers(r Record) {
	engine, args := "docker", []string{"rm", "--force", "--"}
	if s := r.Podman; s != nil {
		if !slices.Contains(Runtimes, s.Runtime) || !filepath.IsAbs(s.Root) || !within(HostRoot, s.RunRoot) || !within(HostRoot, s.TmpDir) {
			c.errs = append(c.errs, fmt.Errorf("state: %s: ignored a record of a Podman store %+v: not a runtime virtbench runs (%s) with its per-boot state in %s", c.dir, *s, strings.Join(Runtimes, ", "), HostRoot))
			return
		}
		engine, args = "podman", append(s.Args(), args...)
	}
	for _, name := range r.Containers {
		if err := exec.Command(engine, append(args, name)...).Run(); err == nil {
			c.did = append(c.did, fmt.Sprintf("removed %s container %s", engine, name))
		}
	}
}

// deleteRuntimeContainers deletes the containers of the record's OCI
// runtimes: only runtimes virtbench runs, on roots within the run's state
// directory.
func (c *cleaner) deleteRuntimeContainers(r Record) {
	for _, rt := range r.Runtimes {
		if !slices.Contains(Runtimes, rt.Binary) || !within(c.dir, rt.Root) {
			c.errs = append(c.errs, fmt.Errorf("state: %s: ignored a record of runtime %q with root %q: not a runtime virtbench runs (%s) on a root in the run's state directory", c.dir, rt.Binary, rt.Root, strings.Join(Runtimes, ", ")))
			continue
		}
		out, err := exec.Command(rt.Binary, "--root", rt.Root, "list", "-q").Output()
		if err != nil {
			continue
		}
		for _, id := range strings.Fields(string(out)) {
			if err := exec.Command(rt.Binary, "--root", rt.Root, "delete", "--force", id).Run(); err == nil {
				c.did = append(c.did, fmt.Sprintf("deleted %s container %s", rt.Binary, id))
			}
		}
	}
}

// killProcesses kills the record's processes that are still the ones
// recorded (Process.Alive), and waits up to 2 s for each to go.
func (c *cleaner) killProcesses(r Record) {
	for _, p := range r.Processes {
		if !p.Alive() {
			continue
		}
		if err := syscall.Kill(p.Pid, syscall.SIGKILL); err == nil {
			c.did = append(c.did, fmt.Sprintf("killed %s process %d", r.Driver, p.Pid))
		}
		for i := 0; i < 200 && p.Alive(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// unmount unmounts the recorded mounts within the run's state directory
// and every mount beneath it, deepest first.
func (c *cleaner) unmount(records []Record) {
	var mounts []string
	for _, r := range records {
		for _, m := range r.Mounts {
			if !within(c.dir, m) {
				c.errs = append(c.errs, fmt.Errorf("state: %s: ignored a recorded mount %s outside the run's state directory", c.dir, m))
				continue
			}
			mounts = append(mounts, m)
		}
	}
	mounts = append(mounts, MountsUnder(c.dir)...)
	sort.Sort(sort.Reverse(sort.StringSlice(mounts))) // deepest first
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err == nil {
			c.did = append(c.did, "unmounted "+m)
		}
	}
}

// killCgroups kills the processes left in the recorded cgroups of the
// run (ofRun), and in the cgroups beneath them (an LXC container's, whose
// monitor's death leaves them running, with the cgroups a system
// container's systemd made).
func (c *cleaner) killCgroups(records []Record) {
	for _, r := range records {
		for _, cg := range r.Cgroups {
			if !c.ofRun(cg) {
				continue
			}
			filepath.WalkDir(cg, func(p string, e os.DirEntry, err error) error {
				if err != nil || e.IsDir() || e.Name() != "cgroup.procs" {
					return nil
				}
				b, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil && pid > 1 && syscall.Kill(pid, syscall.SIGKILL) == nil {
						c.did = append(c.did, fmt.Sprintf("killed %s process %d in %s", r.Driver, pid, filepath.Dir(p)))
					}
				}
				return nil
			})
		}
	}
}

// LXCLockRoot is where LXC, run as root, keeps a lock directory for each
// container path (-P), made on first use and left behind; the lxc
// driver's container paths are its instances' directories.
const LXCLockRoot = "/run/lxc/lock"

// RemoveLXCLock removes LXC's lock directory for the container path dir,
// and the directories LXC made above it once they are empty.
func RemoveLXCLock(dir string) error {
	lock := filepath.Join(LXCLockRoot, dir)
	if err := os.RemoveAll(lock); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	for d := filepath.Dir(lock); strings.HasPrefix(d, LXCLockRoot+"/"); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break // another container path's, or gone
		}
	}
	return nil
}

// removeLXCLocks removes LXC's lock directories for the run's lxc
// instances, all beneath the state directory's.
func (c *cleaner) removeLXCLocks(records []Record) {
	if !slices.ContainsFunc(records, func(r Record) bool { return r.Driver == "lxc" }) {
		return
	}
	if _, err := os.Stat(filepath.Join(LXCLockRoot, c.dir)); err != nil {
		return
	}
	if err := RemoveLXCLock(c.dir); err != nil {
		c.errs = append(c.errs, err)
		return
	}
	c.did = append(c.did, "removed LXC's lock directory "+filepath.Join(LXCLockRoot, c.dir))
}

// removeCgroups removes the recorded cgroups, the children of the run's
// cgroup parents, and the parents. Each is removed on its own: a runtime
// may have removed the instance's cgroup already, and its parent must
// still go.
func (c *cleaner) removeCgroups(records []Record, runParents []string) {
	var cgs, parents []string
	for _, r := range records {
		for _, cg := range r.Cgroups {
			if c.ofRun(cg) {
				cgs = append(cgs, beneath(cg)...)
			}
			cgs = append(cgs, cg)
			parents = append(parents, filepath.Dir(cg))
		}
	}
	for _, p := range runParents {
		children, _ := os.ReadDir(p)
		for _, ch := range children {
			if ch.IsDir() {
				cgs = append(cgs, filepath.Join(p, ch.Name()))
			}
		}
		parents = append(parents, p)
	}
	for _, cg := range append(cgs, parents...) {
		if _, err := os.Stat(cg); err != nil {
			continue
		}
		if err := removeCgroup(cg); err != nil {
			c.errs = append(c.errs, err)
		} else {
			c.did = append(c.did, "removed cgroup "+cg)
		}
	}
}

// ofRun reports whether the cgroup directory cg is the run's: beneath
// the cgroup root and beneath the run's parent, virtbench.RUN, in some
// hierarchy.
func (c *cleaner) ofRun(cg string) bool {
	return within(cgroups.Root, cg) && strings.Contains(filepath.Clean(cg)+"/", "/virtbench."+filepath.Base(c.dir)+"/")
}

// beneath returns the cgroups beneath dir, deepest first (those a system
// container's systemd makes).
func beneath(dir string) []string {
	var dirs []string
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.IsDir() && p != dir {
			dirs = append(dirs, p)
		}
		return nil
	})
	slices.Reverse(dirs)
	return dirs
}

// Remove removes an orphaned run's state directory, once Clean removed
// what it recorded and the run's end is marked: the directory is what
// makes clean find the run again.
func Remove(o Orphan) error {
	if err := os.RemoveAll(o.Dir); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// within reports whether path is dir or lies beneath it, lexically.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, filepath.Clean(path))
	return err == nil && filepath.IsAbs(path) && rel != ".." && !strings.HasPrefix(rel, "../")
}

// CheckRoot refuses a state root that another user could have planted or
// can write: one that is not a directory (a symbolic link, say), is owned
// by another user, or is writable by its group or others, as ssh refuses
// such a ~/.ssh. Records in it name processes to kill and containers to
// delete, with the privileges of whoever runs virtbench clean. A root
// that does not exist passes: LockRoot makes it.
func CheckRoot(root string) error {
	fi, err := os.Lstat(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("state: the state root %s is not a directory (%s): remove it, or set VIRTBENCH_STATE to a directory of your own", root, fi.Mode().Type())
	case !ok || int(st.Uid) != os.Geteuid():
		return fmt.Errorf("state: the state root %s belongs to uid %d, not to you (uid %d): someone else made it; remove it, or set VIRTBENCH_STATE to a directory of your own", root, st.Uid, os.Geteuid())
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("state: the state root %s is writable by others (mode %v): chmod go-w it, or set VIRTBENCH_STATE to a directory of your own", root, fi.Mode().Perm())
	}
	return nil
}

// removeCgroup removes the cgroup directory dir, retrying for up to 5 s:
// a killed task leaves its cgroup asynchronously, and an orphan (a
// container's conmon) only once the host's init reaps it, which some
// inits do every few seconds.
func removeCgroup(dir string) error {
	var err error
	for i := 0; i < 500; i++ {
		err = os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("state: remove cgroup: %w", err)
}

// MountsUnder returns the mount points at or below dir in this process's
// mount namespace.
func MountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	return out
}

// LockRoot takes an exclusive lock on root (created if needed), so that
// checking for other runs and claiming a state directory happen as one
// step; it returns the function that releases it.
func LockRoot(root string) (func(), error) {
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := CheckRoot(root); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(root, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("state: lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// concurrentPrefix starts the notes a run leaves in another run's state
// directory to say that it ran at the same time.
const concurrentPrefix = "concurrent-"

// NoteConcurrent tells the run owning stateDir that this run (with run
// directory runDir) shares the host with it.
func NoteConcurrent(stateDir, runDir string) error {
	self, err := Self()
	if err != nil {
		return err
	}
	return writeJSON(filepath.Join(stateDir, fmt.Sprintf("%s%d.json", concurrentPrefix, self.Pid)), Owner{Process: self, RunDir: runDir})
}

// ConcurrentNotes returns the runs that noted in stateDir that they shared
// the host with its run.
func ConcurrentNotes(stateDir string) []Owner {
	paths, _ := filepath.Glob(filepath.Join(stateDir, concurrentPrefix+"*.json"))
	var out []Owner
	for _, p := range paths {
		var o Owner
		if b, err := os.ReadFile(p); err == nil && json.Unmarshal(b, &o) == nil {
			out = append(out, o)
		}
	}
	return out
}
