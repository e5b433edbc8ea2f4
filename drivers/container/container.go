// Package container is virtbench's own Linux container: OS-level
// virtualization with nothing between the harness and the kernel.
//
// An instance is the agent started as init of new PID, mount, UTS, IPC and
// network namespaces (and optionally a user namespace), in a cgroup of its
// own beneath virtbench's, on an overlay of the shared read-only base
// root filesystem (images.BuildRootfs) and a per-instance writable layer.
// The agent does the in-namespace setup itself (package
// guest/containerinit), so a start is one clone and one exec.
//
// Options (scenario "container.NAME"): see Options.
package container

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"virtbench/drivers"
	"virtbench/drivers/internal/agentproc"
	"virtbench/drivers/internal/undo"
	"virtbench/drivers/internal/vnet"
	"virtbench/guest"
	"virtbench/guest/containerinit"
	"virtbench/images"
	"virtbench/internal/cgroups"
	"virtbench/internal/results"
)

// Grace is how long Stop waits after SIGTERM before SIGKILL.
const Grace = 2 * time.Second

// DefaultPids is the default pids limit of an instance.
const DefaultPids = 1024

// userNSBase is the first host UID/GID of a user-namespaced container.
const userNSBase = 100000

// Options are the driver's settings.
var Options = []drivers.Option{
	{Name: "userns", Kind: drivers.Bool, Default: "false", Doc: "run the container in a user namespace mapping root to host UIDs 100000-165535"},
	{Name: "pids", Kind: drivers.Positive, Default: strconv.Itoa(DefaultPids), Doc: "the container's pids limit"},
	{Name: "image", Values: []string{"minimal", "debian"}, Default: "minimal", Doc: "the root filesystem: the agent alone, or a debootstrapped Debian (built once)"},
	{Name: "network", Values: []string{"none", "veth"}, Default: "none", Doc: "none: loopback only; veth: an eth0 on a veth pair to a peer namespace virtbench creates"},
}

func init() {
	drivers.Register(drivers.Info{
		Name:           "container",
		Options:        Options,
		Virtualization: "OS-level: Linux namespaces + cgroups + overlayfs, shared host kernel",
		Class:          results.ClassOSLevel,
		// The namespaces and cgroups runc would set up: runc's handler.
		Handler:  "runc",
		Services: true,
		// the Go agent as init: 6 threads; kernel objects of the namespaces
		Estimate: drivers.Estimate{Tasks: 8, MemoryBytes: 8 << 20, Trial: 150 * time.Millisecond},
		Factory:  func(env drivers.Env) (drivers.Driver, error) { return New(env) },
	})
}

// Driver starts containers.
type Driver struct {
	env    drivers.Env
	userNS bool
	pids   int64
	debian bool
	veth   bool

	peer vnet.LazyPeer

	once sync.Once
	// lower is the overlay's read-only lower directory list: the minimal
	// rootfs, or the agent layer over the Debian base.
	lower []string
	agent string // host path of the agent inside lower
	err   error
	// tools is the tools layer, above lower for workloads that need it.
	tools images.LazyTools

	planOnce sync.Once
	planner  *cgroups.Planner // the run's instances' cgroups
	planErr  error
}

var _ drivers.Driver = (*Driver)(nil)

// New returns a container driver for env.
func New(env drivers.Env) (*Driver, error) {
	v, err := drivers.ParseOptions("container", Options, env.Options)
	if err != nil {
		return nil, fmt.Errorf("container: %w", err)
	}
	return &Driver{env: env, userNS: v.Bool("userns"), debian: v.String("image") == "debian", veth: v.String("network") == "veth", pids: int64(v.Int("pids"))}, nil
}

// Name returns "container".
func (d *Driver) Name() string { return "container" }

// Check reports whether this host can run containers: root, overlayfs,
// cgroups, and the base image (built on first use).
func (d *Driver) Check(context.Context) error {
	if os.Geteuid() != 0 {
		return drivers.Unavailable("needs root for namespaces, mounts and cgroups (run virtbench as root)")
	}
	fs, err := os.ReadFile("/proc/filesystems")
	if err != nil || !strings.Contains(string(fs), "\toverlay\n") {
		return drivers.Unavailable("the kernel has no overlay filesystem (modprobe overlay)")
	}
	if _, err := os.Stat(cgroups.Root); err != nil {
		return drivers.Unavailable("no cgroup filesystem at %s", cgroups.Root)
	}
	if d.debian && d.userNS {
		return drivers.Unavailable("image=debian with userns=true is not supported (the Debian base is owned by host root)")
	}
	if d.debian {
		if err := drivers.NeedBinary("debootstrap", "debootstrap"); err != nil {
			return err
		}
	}
	// The host has what the image needs: a failure to build it is the
	// driver's own, not a missing capability.
	if err := d.image(); err != nil {
		return fmt.Errorf("container: base image: %w", err)
	}
	return nil
}

// image builds (once) the read-only layers instances share.
func (d *Driver) image() error {
	d.once.Do(func() {
		if d.debian {
			base, err := images.DebianBase(d.env.CacheDir)
			if err != nil {
				d.err = err
				return
			}
			layer, err := images.BuildAgentLayer(d.env.CacheDir, d.env.Agent)
			if err != nil {
				d.err = err
				return
			}
			d.lower, d.agent = []string{layer, base}, filepath.Join(layer, images.AgentPath)
			return
		}
		owner := 0
		if d.userNS {
			owner = userNSBase
		}
		r, err := images.BuildRootfs(d.env.CacheDir, d.env.Agent, owner)
		d.lower, d.agent, d.err = []string{r.Dir}, r.Agent, err
	})
	return d.err
}

// ImageUsage returns the disk footprint of the shared read-only layers.
func (d *Driver) ImageUsage() (images.Usage, error) {
	if err := d.image(); err != nil {
		return images.Usage{}, err
	}
	return images.DiskUsageAll(d.lower...)
}

// ToolsUsage returns the disk footprint of the tools layer.
func (d *Driver) ToolsUsage() (images.Usage, error) { return d.tools.Usage(d.env.CacheDir) }

// Start creates the instance's directories and cgroup, clones the agent
// into new namespaces, places it in the cgroup, and hands it its
// configuration. On error everything created is removed.
//
// The start's phases (results.Phases) are the host's cgroup and clone,
// then the init's own setup steps (containerinit.Steps), which it
// reports in READY on the monotonic clock it shares with the host.
func (d *Driver) Start(_ context.Context, spec drivers.Spec) (_ drivers.Instance, err error) {
	begin := time.Now()
	if err := d.image(); err != nil {
		return nil, fmt.Errorf("container: image: %w", err)
	}
	id := drivers.SafeName(spec.ID)
	inst := &instance{id: spec.ID, beginMono: guest.Monotonic()}
	defer inst.undo.OnError(&err)

	lower := d.lower
	if spec.Image != nil {
		// The agent runs from the host's copy; the layer adds the mount
		// points the init needs over the service's root.
		l, err := images.BuildServiceLayer(d.env.CacheDir, d.env.Agent)
		if err != nil {
			return nil, fmt.Errorf("container: %w", err)
		}
		lower = []string{l, spec.Image.Root}
	}
	if guest.NeedsTools(spec.Workload) {
		t, err := d.tools.Get(d.env.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("container: %w", err)
		}
		lower = append([]string{t.Root}, lower...)
	}
	cg, err := d.cgroup(id, spec)
	if err != nil {
		return nil, err
	}
	inst.cg = cg
	inst.undo.Push(cg.Remove)
	inst.hostPhases = []drivers.Phase{{Name: "cgroup", At: time.Now()}}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("container: %w", err)
	}
	defer cfgR.Close()
	defer cfgW.Close()
	cfg := containerinit.Config{Lower: strings.Join(lower, ":"), Hostname: id, UserNS: d.userNS}
	nonce := guest.NewNonce()
	cmd := d.initCommand(spec, cfgR, nonce)
	start, done, err := initStarter(cmd, cg, begin, nonce)
	if err != nil {
		return nil, err
	}
	defer done()
	p, err := startReduced(start)
	if err != nil {
		return nil, fmt.Errorf("container: %w", err)
	}
	inst.p = p
	inst.undo.Push(p.Kill)
	cfgR.Close()
	// While the init's runtime starts, the directories of its overlay: it
	// waits for its configuration before it mounts them.
	if err := d.makeInstanceDir(inst, id, &cfg); err != nil {
		return nil, err
	}
	if d.veth || spec.Image != nil {
		// Before the init runs its workload, so the network is there at
		// READY; a service always gets it, for the host's probe.
		if err := d.connect(inst); err != nil {
			return nil, err
		}
	}
	if err := sendConfig(cfgW, cfg); err != nil {
		return nil, fmt.Errorf("container: %w", err)
	}
	return inst, nil
}

// initCommand is the container's init: the agent in new PID, mount, UTS,
// IPC and network namespaces (and a user namespace where the driver maps
// one), reading its configuration from cfg (fd 3).
func (d *Driver) initCommand(spec drivers.Spec, cfg *os.File, nonce guest.Nonce) *exec.Cmd {
	cmd := exec.Command(d.agent, append([]string{spec.Workload}, spec.Args...)...)
	cmd.Env = []string{containerinit.EnvFD + "=3", guest.NonceEnv + "=" + string(nonce)}
	cmd.ExtraFiles = []*os.File{cfg}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWNET,
		// If virtbench dies, the container's init dies, and with it every
		// process of its PID namespace.
		Pdeathsig: syscall.SIGKILL,
	}
	if d.userNS {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: userNSBase, Size: 65536}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: userNSBase, Size: 65536}}
		// Become the namespace's root (host UID userNSBase) before exec, or
		// exec would run as the unmapped host root, without capabilities.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	return cmd
}

// initStarter returns the function that starts cmd inside cg, and done, which
// releases what it holds once the init started.
func initStarter(cmd *exec.Cmd, cg *cgroups.Cgroup, begin time.Time, nonce guest.Nonce) (func() (*agentproc.Process, error), func(), error) {
	start := func() (*agentproc.Process, error) {
		return agentproc.Start(cmd, begin, nonce, agentproc.WithStartPhase("clone"), agentproc.WithCombinedOutput())
	}
	if cgDir := cg.Dir(); cgDir != "" {
		// cgroup v2: clone straight into the cgroup.
		fd, err := syscall.Open(cgDir, syscall.O_DIRECTORY|syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("container: open cgroup: %w", err)
		}
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
		return start, func() { syscall.Close(fd) }, nil
	}
	// cgroup v1: fork from the spawner thread while it visits the cgroup,
	// so the init is born in it; moving the init there by PID would cost
	// an RCU grace period (5-20 ms).
	inside := func() (p *agentproc.Process, err error) {
		err = cg.SpawnInside(func() error {
			p, err = start()
			return err
		})
		if err != nil && p != nil {
			_ = p.Kill()
			p = nil
		}
		return p, err
	}
	return inside, func() {}, nil
}

// makeInstanceDir makes the instance's directory and the directories of
// its overlay, named in cfg; they go once the init is gone.
func (d *Driver) makeInstanceDir(inst *instance, id string, cfg *containerinit.Config) error {
	dir := filepath.Join(d.env.StateDir, "container-"+id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("container: instance directory: %w", err)
	}
	inst.dir = dir
	p := inst.p
	inst.undo.Push(func() error {
		_ = p.Kill()
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("container: %w", err)
		}
		return nil
	})
	return d.makeDirs(dir, cfg)
}

// connect gives the instance's network namespace a veth to virtbench's
// peer namespace.
func (d *Driver) connect(inst *instance) error {
	peer, err := d.peer.Get()
	if err != nil {
		return fmt.Errorf("container: network: %w", err)
	}
	link, err := peer.Connect(inst.p.Pid(), "eth0")
	if err != nil {
		return fmt.Errorf("container: network: %w", err)
	}
	inst.path = vnet.Path{Peer: peer, Link: link}
	return nil
}

// sendConfig writes the init's configuration and closes the pipe: the init
// reads it to its end.
func sendConfig(w *os.File, cfg containerinit.Config) error {
	b, err := cfg.Encode()
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("send configuration: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("send configuration: %w", err)
	}
	return nil
}

// cgroup creates the instance's cgroup beneath the run's parent, which
// virtbench run records for clean when it claims the state directory
// (state.Claim): nothing is written per instance on the start's path.
func (d *Driver) cgroup(id string, spec drivers.Spec) (*cgroups.Cgroup, error) {
	d.planOnce.Do(func() { d.planner, d.planErr = cgroups.NewPlanner(filepath.Base(d.env.StateDir)) })
	if d.planErr != nil {
		return nil, fmt.Errorf("container: cgroup: %w", d.planErr)
	}
	cg, err := cgroups.Create(d.planner.Plan(id), cgroups.Limits{MemoryBytes: spec.MemoryBytes, CPUs: spec.CPUs, Pids: d.pids})
	if err != nil {
		return nil, fmt.Errorf("container: cgroup: %w", err)
	}
	return cg, nil
}

// makeDirs creates the overlay's upper, work and mount point directories
// in the instance directory dir, and names them in cfg.
func (d *Driver) makeDirs(dir string, cfg *containerinit.Config) error {
	cfg.Upper, cfg.Work, cfg.Merged = filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")
	for _, p := range []string{cfg.Upper, cfg.Work, cfg.Merged} {
		if err := os.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("container: %w", err)
		}
		if d.userNS {
			if err := os.Chown(p, userNSBase, userNSBase); err != nil {
				return fmt.Errorf("container: %w", err)
			}
		}
	}
	if d.userNS {
		// The mapped root must be able to reach the overlay directories.
		if err := os.Chmod(dir, 0o711); err != nil {
			return fmt.Errorf("container: %w", err)
		}
	}
	return nil
}

// spawner forks every container init of the process from one OS thread
// whose capability bounding set holds only Docker's default capabilities,
// whose inheritable set holds the init's setup capabilities, and whose
// no_new_privs is set (the child inherits all three, so the init has
// only its permitted set left to reduce, and each change it makes costs a
// stop-the-world). The thread lives as long
// as the process: a child's Pdeathsig fires when the thread that forked it
// exits. It is process-wide state because it is an OS resource, like the
// Go runtime's own threads.
var spawner struct {
	once sync.Once
	reqs chan func()
	err  error
}

// startReduced runs start on the spawner thread.
func startReduced(start func() (*agentproc.Process, error)) (*agentproc.Process, error) {
	spawner.once.Do(func() {
		spawner.reqs = make(chan func())
		ready := make(chan error)
		go spawnLoop(ready)
		spawner.err = <-ready
	})
	if spawner.err != nil {
		return nil, spawner.err
	}
	var p *agentproc.Process
	var err error
	done := make(chan struct{})
	spawner.reqs <- func() {
		p, err = start()
		close(done)
	}
	<-done
	return p, err
}

func spawnLoop(ready chan<- error) {
	runtime.LockOSThread() // never unlocked: the thread's capabilities differ
	// The init's setup capabilities go to it through the inheritable set,
	// which root's execve adds to the permitted set, and never through the
	// bounding set: the init then has nothing to drop from its bounding
	// set, which it would have to do on each of its threads.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		ready <- fmt.Errorf("container: spawner: capget: %w", err)
		return
	}
	for _, c := range containerinit.SetupCaps {
		caps[c/32].Inheritable |= 1 << (c % 32)
	}
	if err := unix.Capset(&hdr, &caps[0]); err != nil {
		ready <- fmt.Errorf("container: spawner: capset: %w", err)
		return
	}
	keep := map[uintptr]bool{}
	for _, c := range containerinit.DefaultCaps {
		keep[c] = true
	}
	for c := uintptr(0); c <= unix.CAP_LAST_CAP; c++ {
		if keep[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			ready <- fmt.Errorf("container: spawner: drop capability %d: %w", c, err)
			return
		}
	}
	// no_new_privs too, which the init would otherwise set on each of its
	// threads with a stop-the-world: execve keeps it.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		ready <- fmt.Errorf("container: spawner: no_new_privs: %w", err)
		return
	}
	close(ready)
	for f := range spawner.reqs {
		f()
	}
}

type instance struct {
	id string
	// hostPhases are the phases before the clone; beginMono is
	// CLOCK_MONOTONIC when the start began, to place the init's steps.
	hostPhases []drivers.Phase
	beginMono  float64
	dir        string
	cg         *cgroups.Cgroup
	p          *agentproc.Process
	path       vnet.Path // the zero Path without a network option

	// undo kills the init and removes the instance directory, then the
	// cgroup.
	undo undo.Stack
}

var (
	_ drivers.Instance = (*instance)(nil)
	_ drivers.Cgrouper = (*instance)(nil)
	_ drivers.Exiter   = (*instance)(nil)
)

func (i *instance) ID() string { return i.id }

func (i *instance) Ready(ctx context.Context) (drivers.Readiness, error) {
	r, err := i.p.Ready(ctx)
	if err != nil {
		if errors.Is(err, drivers.ErrExited) && i.cg.OOMKilled() {
			err = fmt.Errorf("%w (killed by the memory limit)", err)
		}
		return r, err
	}
	r.Phases = append(slices.Clone(i.hostPhases), r.Phases...)
	// The container shares the host's CLOCK_MONOTONIC.
	r.Phases = append(r.Phases, r.StepPhases(func(sec float64) time.Time {
		return r.Begin.Add(time.Duration((sec - i.beginMono) * float64(time.Second)))
	})...)
	return r, nil
}

func (i *instance) Processes() []int32           { return []int32{int32(i.p.Pid())} }
func (i *instance) Output() <-chan guest.Message { return i.p.Output() }
func (i *instance) Exited() <-chan struct{}      { return i.p.Exited() }
func (i *instance) WaitLine(ctx context.Context, re *regexp.Regexp) (time.Time, error) {
	return i.p.WaitLine(ctx, re)
}

func (i *instance) ExitErr() error {
	err := i.p.ExitErr()
	if err != nil && i.cg.OOMKilled() {
		err = fmt.Errorf("%w (killed by the memory limit)", err)
	}
	return err
}

// Dial connects from the peer namespace to the container's port over its
// veth; without network=veth there is no path and it returns
// ErrNotApplicable.
func (i *instance) Dial(ctx context.Context, port string) (net.Conn, error) {
	return i.path.Dial(ctx, port)
}

// PeerAddr and StartAtPeer serve host programs over the same path as Dial.
func (i *instance) PeerAddr(port string) (string, error) { return i.path.PeerAddr(port) }
func (i *instance) StartAtPeer(cmd *exec.Cmd) error      { return i.path.StartAtPeer(cmd) }

// CgroupMemoryBytes returns the cgroup's memory usage without page cache.
func (i *instance) CgroupMemoryBytes() (int64, error) { return i.cg.MemoryBytes() }

// WritableUsage returns the footprint of the instance's writable layer.
func (i *instance) WritableUsage() (images.Usage, error) {
	return images.DiskUsage(filepath.Join(i.dir, "upper"))
}

// Stop terminates the init (and with it the PID namespace), then removes
// the instance directory and the cgroup. The overlay and every other mount
// lived in the container's mount namespace, which the kernel tears down
// with its last process.
func (i *instance) Stop(ctx context.Context) error {
	return i.undo.RunAfter(func() error { return i.p.Stop(ctx, Grace) })
}
