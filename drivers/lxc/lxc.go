// Package lxc runs the agent in an LXC container, with LXC's own
// configuration and its own code for the namespaces, mounts and cgroups:
// an application container, one lxc-execute command per instance as LXC's
// users run a single program, or with image=debian a system container
// (system.go), a Debian booting systemd with the agent as its service.
//
// lxc-execute stays in the foreground as the container's monitor; inside,
// LXC's init (lxc-execute again, as PID 1) runs the agent, whose console
// is the command's stdout. Each instance gets the read-only base rootfs of
// drivers/container (or the Debian base) under an overlay of its own,
// mounted by virtbench and given to LXC as a directory, the namespaces LXC gives a container (PID, mount, UTS, IPC,
// network, cgroup), LXC's default capability set less what a container
// must not have, and a cgroup beneath virtbench's own
// (lxc.cgroup.relative: OWN/virtbench.RUN/lxc-ID, the container's payload
// in lxc.payload.ID beneath it). With network=veth the container joins, by
// path, a network namespace virtbench made with a veth to its peer, as
// drivers/runc does.
//
// Options (scenario "lxc.NAME"): see Options.
package lxc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	"virtbench/drivers/state"
	"virtbench/guest"
	"virtbench/images"
	"virtbench/internal/cgroups"
	"virtbench/internal/results"
	"virtbench/internal/tools"
)

// Grace is how long Stop lets the container handle SIGTERM.
const Grace = 2 * time.Second

// Options are the driver's settings.
var Options = []drivers.Option{
	{Name: "image", Values: []string{ImageMinimal, ImageDebian}, Default: ImageMinimal,
		Doc: "minimal: the agent alone, run by lxc-execute (an application container); debian: a debootstrapped Debian booting systemd with the agent as a service, run by lxc-start (a system container, the counterpart of qemu.image=debian)"},
	{Name: "network", Values: []string{"none", "veth"}, Default: "none",
		Doc: "none: loopback only; veth: an eth0 on a veth pair to a peer namespace virtbench creates, shared by path (lxc.namespace.share.net)"},
}

// The image settings.
const (
	ImageMinimal = "minimal"
	ImageDebian  = "debian"
)

func init() {
	drivers.Register(drivers.Info{
		Name:           "lxc",
		Virtualization: "OS-level: an LXC container, an application container (lxc-execute: LXC's monitor, its init, then the program) or, with image=debian, a system container booting systemd (lxc-start)",
		Class:          results.ClassOSLevel,
		Options:        Options,
		Tools:          []drivers.Tool{{Name: "lxc", Version: []string{"lxc-execute", "--version"}}},
		Labels:         []results.Label{drivers.ImageLabel},
		// the monitor, LXC's init and the agent
		Estimate: drivers.Estimate{Tasks: 16, MemoryBytes: 12 << 20, Trial: 300 * time.Millisecond},
		Factory:  func(env drivers.Env) (drivers.Driver, error) { return New(env) },
	})
}

// Driver starts LXC containers.
type Driver struct {
	env    drivers.Env
	veth   bool
	debian bool

	peer  vnet.LazyPeer
	tools images.LazyTools

	once  sync.Once
	lower []string // the read-only layers, top first
	err   error
}

var (
	_ drivers.Driver     = (*Driver)(nil)
	_ drivers.ImageSizer = (*Driver)(nil)
	_ drivers.ToolsSizer = (*Driver)(nil)
)

// New returns an LXC driver for env.
func New(env drivers.Env) (*Driver, error) {
	v, err := drivers.ParseOptions("lxc", Options, env.Options)
	if err != nil {
		return nil, fmt.Errorf("lxc: %w", err)
	}
	return &Driver{env: env, veth: v.String("network") == "veth", debian: v.String("image") == ImageDebian}, nil
}

// Name returns "lxc".
func (d *Driver) Name() string { return "lxc" }

// image builds (once) the read-only layers instances share: the agent's
// rootfs, or the agent's layer over the Debian base.
func (d *Driver) image() ([]string, error) {
	d.once.Do(func() {
		if !d.debian {
			r, err := images.BuildRootfs(d.env.CacheDir, d.env.Agent, 0)
			d.lower, d.err = []string{r.Dir}, err
			return
		}
		// The agent's layer first: a missing agent fails at once, before
		// minutes of debootstrap.
		layer, err := images.BuildAgentLayer(d.env.CacheDir, d.env.Agent)
		if err != nil {
			d.err = err
			return
		}
		base, err := images.DebianBase(d.env.CacheDir)
		d.lower, d.err = []string{layer, base}, err
	})
	return d.lower, d.err
}

// ToolsUsage returns the disk footprint of the tools layer.
func (d *Driver) ToolsUsage() (images.Usage, error) { return d.tools.Usage(d.env.CacheDir) }

// ImageUsage returns the disk footprint of the shared layers.
func (d *Driver) ImageUsage() (images.Usage, error) {
	lower, err := d.image()
	if err != nil {
		return images.Usage{}, err
	}
	var total images.Usage
	for _, dir := range lower {
		u, err := images.DiskUsage(dir)
		if err != nil {
			return images.Usage{}, err
		}
		total.Apparent += u.Apparent
		total.Allocated += u.Allocated
	}
	return total, nil
}

// Check finds lxc-execute and builds the base image. Only a host that
// lacks root or LXC makes the driver unavailable.
func (d *Driver) Check(context.Context) error {
	if os.Geteuid() != 0 {
		return drivers.Unavailable("needs root (run virtbench as root)")
	}
	if _, err := exec.LookPath("lxc-execute"); err != nil {
		return drivers.Unavailable("lxc-execute is not installed: apt-get install lxc")
	}
	if d.debian {
		if err := drivers.NeedBinary("debootstrap", "debootstrap"); err != nil {
			return err
		}
	}
	if _, err := d.image(); err != nil {
		return fmt.Errorf("lxc: image: %w", err)
	}
	return nil
}

// Start mounts the instance's root filesystem, writes its configuration
// and runs it in the foreground: lxc-execute with the agent, or lxc-start
// booting systemd, whose agent service writes to a FIFO virtbench reads.
func (d *Driver) Start(_ context.Context, spec drivers.Spec) (_ drivers.Instance, err error) {
	begin := time.Now()
	lower, err := d.image()
	if err != nil {
		return nil, fmt.Errorf("lxc: image: %w", err)
	}
	id := drivers.SafeName(spec.ID)
	run := filepath.Base(d.env.StateDir)
	inst := &instance{id: spec.ID, name: id, dir: filepath.Join(d.env.StateDir, "lxc-"+id), image: ImageMinimal}
	defer inst.undo.OnError(&err)
	inst.cgroup = filepath.Join("virtbench."+run, "lxc-"+id)
	if inst.memCgroup, err = cgroups.RuntimePath(run, "lxc-"+id); err != nil {
		return nil, fmt.Errorf("lxc: %w", err)
	}
	if err := inst.makeDir(); err != nil {
		return nil, err
	}
	if err := inst.record(); err != nil {
		return nil, err
	}
	if err := inst.mountRootfs(lower); err != nil {
		return nil, err
	}
	netns, err := d.network(inst)
	if err != nil {
		return nil, err
	}
	nonce := guest.NewNonce()
	if d.debian {
		inst.image = ImageDebian
		if err := inst.prepareSystem(spec, nonce); err != nil {
			return nil, err
		}
	}
	conf, err := d.config(spec, inst, netns, nonce)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(inst.dir, "config"), []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("lxc: %w", err)
	}
	args := []string{"-n", inst.name, "-P", inst.dir, "-f", filepath.Join(inst.dir, "config")}
	cmd := exec.Command("lxc-execute", append(append(args, "--", images.AgentPath, spec.Workload), spec.Args...)...)
	if d.debian {
		cmd = exec.Command("lxc-start", append(args, "-F")...)
	}
	p, err := agentproc.Start(cmd, begin, nonce)
	if err != nil {
		return nil, fmt.Errorf("lxc: %w", err)
	}
	inst.p = p
	inst.undo.Push(inst.removeLock)
	inst.undo.Push(inst.kill)
	if d.debian {
		inst.readConsole(begin, nonce)
	}
	if err := inst.record(); err != nil {
		return nil, err
	}
	return inst, nil
}

// mountRootfs mounts the instance's overlay of lower (and its upper
// directory) at its rootfs directory; undo unmounts it.
func (i *instance) mountRootfs(lower []string) error {
	rootfs := filepath.Join(i.dir, "rootfs")
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(lower, ":"), filepath.Join(i.dir, "upper"), filepath.Join(i.dir, "work"))
	if err := unix.Mount("overlay", rootfs, "overlay", 0, opts); err != nil {
		return fmt.Errorf("lxc: mount overlay: %w", err)
	}
	i.undo.Push(func() error {
		if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("lxc: unmount %s: %w", rootfs, err)
		}
		return nil
	})
	return nil
}

// makeDir makes the instance's directory, with the overlay's upper and
// work directories; undo removes it, and the container's cgroups before.
func (i *instance) makeDir() error {
	if err := os.Mkdir(i.dir, 0o700); err != nil {
		return fmt.Errorf("lxc: instance directory: %w", err)
	}
	i.undo.Push(func() error {
		if err := os.RemoveAll(i.dir); err != nil {
			return fmt.Errorf("lxc: %w", err)
		}
		return nil
	})
	for _, sub := range []string{"upper", "work", "rootfs"} {
		if err := os.Mkdir(filepath.Join(i.dir, sub), 0o755); err != nil {
			return fmt.Errorf("lxc: %w", err)
		}
	}
	i.undo.Push(i.removeCgroups)
	return nil
}

// network makes the network namespace the container joins with
// network=veth and returns its path; "" without.
func (d *Driver) network(inst *instance) (string, error) {
	if !d.veth {
		return "", nil
	}
	peer, err := d.peer.Get()
	if err != nil {
		return "", fmt.Errorf("lxc: network: %w", err)
	}
	ns, link, err := peer.Namespace("eth0")
	if err != nil {
		return "", fmt.Errorf("lxc: network: %w", err)
	}
	// The namespace, and the veth pair in it, go with the last holder.
	inst.undo.Push(ns.Close)
	inst.Path = vnet.Path{Peer: peer, Link: link}
	return vnet.NsPath(ns), nil
}

// config returns the container's LXC configuration: the mounted overlay
// as its rootfs, what a system container needs to boot systemd, the
// agent's environment, the cgroup (relative to virtbench's
// own) with the spec's limits, the tools layer bound where the workload
// needs it, and the network.
func (d *Driver) config(spec drivers.Spec, inst *instance, netns string, nonce guest.Nonce) (string, error) {
	var b strings.Builder
	line := func(key, value string) { fmt.Fprintf(&b, "%s = %s\n", key, value) }
	line("lxc.uts.name", inst.name)
	line("lxc.rootfs.path", "dir:"+filepath.Join(inst.dir, "rootfs"))
	if d.debian {
		systemConfig(line, inst)
	} else {
		line("lxc.mount.auto", "proc:mixed sys:mixed")
	}
	line("lxc.cap.drop", "sys_module sys_rawio sys_time mac_admin mac_override")
	line("lxc.apparmor.profile", "unconfined")
	line("lxc.no_new_privs", "1")
	line("lxc.cgroup.relative", "1")
	line("lxc.cgroup.dir", inst.cgroup)
	for _, e := range []string{"PATH=/usr/bin:/bin:/sbin", guest.ListenEnv + "=:0", guest.NonceEnv + "=" + string(nonce)} {
		line("lxc.environment", e)
	}
	prefix := "lxc.cgroup."
	if cgroups.Version() == 2 {
		prefix = "lxc.cgroup2."
	}
	line(prefix+"pids.max", "1024")
	if spec.MemoryBytes > 0 {
		key := "memory.limit_in_bytes"
		if cgroups.Version() == 2 {
			key = "memory.max"
		}
		line(prefix+key, strconv.FormatInt(spec.MemoryBytes, 10))
	}
	if guest.NeedsTools(spec.Workload) {
		t, err := d.tools.Get(d.env.CacheDir)
		if err != nil {
			return "", fmt.Errorf("lxc: %w", err)
		}
		line("lxc.mount.entry", t.Prefix+" "+strings.TrimPrefix(tools.Dir, "/")+" none bind,ro,create=dir 0 0")
	}
	if netns != "" {
		line("lxc.namespace.share.net", netns)
	} else {
		line("lxc.net.0.type", "empty")
	}
	return b.String(), nil
}

// record writes the instance's record: the cgroups LXC makes, deepest
// first, and once it runs the monitor's process, so that clean finds them
// whenever virtbench dies.
func (inst *instance) record() error {
	cgs, err := inst.cgroupDirs()
	if err != nil {
		return fmt.Errorf("lxc: %w", err)
	}
	r := state.Record{Driver: "lxc", Cgroups: cgs, Mounts: []string{filepath.Join(inst.dir, "rootfs")}}
	if inst.p != nil {
		r.Processes = []state.Process{state.ProcessOf(inst.p.Pid())}
	}
	if err := state.Write(inst.dir, r); err != nil {
		return fmt.Errorf("lxc: %w", err)
	}
	return nil
}

type instance struct {
	id, name, dir string
	// cgroup is virtbench.RUN/lxc-ID, relative to virtbench's own cgroup
	// in each hierarchy; memCgroup is the memory hierarchy's, from its
	// root, where the container's processes are read.
	cgroup, memCgroup string
	image             string // ImageMinimal or ImageDebian
	p                 *agentproc.Process
	// console reads the agent's console: the process's stdout
	// (lxc-execute), or the FIFO its service writes to (lxc-start).
	console *agentproc.Console
	fifo    *os.File

	// Path serves Dial, PeerAddr and StartAtPeer over the container's
	// veth; the zero Path, which returns ErrNotApplicable, without
	// network=veth.
	vnet.Path

	// undo kills lxc-execute, then closes the network namespace, removes
	// the cgroups and then the instance directory.
	undo undo.Stack
}

var (
	_ drivers.Instance      = (*instance)(nil)
	_ drivers.Exiter        = (*instance)(nil)
	_ drivers.WritableSizer = (*instance)(nil)
	_ drivers.Dialer        = (*instance)(nil)
	_ drivers.PeerRunner    = (*instance)(nil)
)

func (i *instance) ID() string { return i.id }
func (i *instance) Output() <-chan guest.Message {
	if i.console != nil {
		return i.console.Output()
	}
	return i.p.Output()
}
func (i *instance) Exited() <-chan struct{} { return i.p.Exited() }
func (i *instance) ExitErr() error          { return i.p.ExitErr() }

// Ready waits for READY; the instance is labelled with its image.
func (i *instance) Ready(ctx context.Context) (drivers.Readiness, error) {
	var r drivers.Readiness
	var err error
	if i.console != nil {
		r, err = i.console.Ready(ctx, i.p.Exited(), i.p.ExitErr)
	} else {
		r, err = i.p.Ready(ctx)
	}
	if err == nil {
		r.Labels = map[string]string{drivers.LabelImage: i.image}
	}
	return r, err
}

// payload is the memory cgroup of the container's processes, beneath the
// instance's.
func (i *instance) payload() string { return filepath.Join(i.memCgroup, "lxc.payload."+i.name) }

// cgroupDirs are the cgroup directories LXC makes for the instance in
// every hierarchy, deepest first: the payload's, the one it pivots
// through, the monitor's, and the instance's.
func (i *instance) cgroupDirs() ([]string, error) {
	var dirs []string
	for _, rel := range []string{filepath.Join(i.cgroup, "lxc.payload."+i.name), filepath.Join(i.cgroup, "lxc.pivot"), filepath.Join(i.cgroup, "lxc.monitor."+i.name), i.cgroup} {
		d, err := cgroups.OwnDirs(rel)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, d...)
	}
	return dirs, nil
}

// Processes returns the monitor and the container's processes: LXC's
// init and the agent, or a booted system's (systemd, its services, the
// agent).
func (i *instance) Processes() []int32 {
	procs, _ := cgroups.TreeProcs(i.payload())
	return append([]int32{int32(i.p.Pid())}, procs...)
}

// WritableUsage returns the footprint of the instance's writable layer.
func (i *instance) WritableUsage() (images.Usage, error) {
	return images.DiskUsage(filepath.Join(i.dir, "upper"))
}

// Stop sends SIGTERM to lxc-execute, whose init passes it to the agent,
// or has lxc-stop halt the system container; after the grace period it
// kills what is left.
func (i *instance) Stop(ctx context.Context) error {
	return i.undo.RunAfter(func() error {
		if i.image == ImageDebian {
			_ = exec.Command("lxc-stop", "-n", i.name, "-P", i.dir, "--nowait").Run()
		} else {
			_ = i.p.Signal(syscall.SIGTERM)
		}
		i.p.Await(ctx, Grace)
		return nil
	})
}

// kill kills the container's processes and lxc-execute, and reaps it.
func (i *instance) kill() error {
	if procs, err := cgroups.TreeProcs(i.payload()); err == nil {
		for _, pid := range procs {
			_ = syscall.Kill(int(pid), syscall.SIGKILL)
		}
	}
	return i.p.Kill()
}

// removeLock removes the lock directory LXC made for the instance's
// container path (state.LXCLockRoot).
func (i *instance) removeLock() error { return state.RemoveLXCLock(i.dir) }

// removeCgroups removes the instance's cgroups once its processes are
// gone, and the run's once no other instance holds it.
func (i *instance) removeCgroups() error {
	for end := time.Now().Add(Grace); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if procs, err := cgroups.TreeProcs(i.payload()); err != nil || len(procs) == 0 {
			break
		}
	}
	dirs, err := i.cgroupDirs()
	if err != nil {
		return fmt.Errorf("lxc: %w", err)
	}
	err = cgroups.RemoveTrees(dirs)
	if parents, perr := cgroups.OwnDirs(filepath.Dir(i.cgroup)); perr == nil {
		_ = cgroups.RemoveDirs(parents) // busy while other instances run
	}
	return err
}
