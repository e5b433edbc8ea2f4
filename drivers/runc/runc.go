// Package runc runs the agent with an OCI runtime users already have: the
// peer that virtbench's own container driver is measured against. It
// registers "runc" and "crun", which share runc's command line, and
// "gvisor": gVisor's runsc, whose command line is runc's too but whose
// container runs on a user-space kernel (the Sentry) that serves its
// system calls, through ptrace or, where hardware-assisted KVM is usable,
// KVM (option platform).
//
// Each instance gets the same read-only base root filesystem as
// drivers/container, with a per-instance overlay writable layer mounted at
// the bundle's rootfs, and an OCI bundle (config.json written with the
// runtime-spec types) giving the same isolation: PID, mount, UTS, IPC and
// network namespaces, Docker's default capabilities, no_new_privs, a cgroup
// beneath virtbench's own. The runtime runs in the foreground
// ("RUNTIME run"), so its stdout is the agent's console; its state
// directory (--root) is private to the instance.
//
// Options: see NetworkOption and GVisorOptions. With network=veth the
// container gets an eth0 on a veth pair to a peer namespace virtbench
// creates, as drivers/container does: virtbench makes the network
// namespace and the runtime joins it by path. gVisor then runs with
// --network=host inside that namespace: the Sentry's sockets are the
// host kernel's, in the container's own namespace (label netstack=host).
// Its own netstack (--network=sandbox) cannot be used here: runsc
// 20221219 takes any namespace for the host's root namespace on kernels
// where net.core.rmem_default is per namespace (6.x), and refuses it.
package runc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"virtbench/drivers"
	"virtbench/drivers/internal/agentproc"
	"virtbench/drivers/internal/undo"
	"virtbench/drivers/internal/vnet"
	"virtbench/drivers/state"
	"virtbench/guest"
	"virtbench/guest/containerinit"
	"virtbench/images"
	"virtbench/internal/cgroups"
	"virtbench/internal/kvm"
	"virtbench/internal/results"
)

// Grace is how long Stop waits after SIGTERM before killing the container.
const Grace = 2 * time.Second

// NetworkOption is the network setting every runtime of the package takes.
var NetworkOption = drivers.Option{Name: "network", Values: []string{"none", "veth"}, Default: "none",
	Doc: "none: loopback only; veth: an eth0 on a veth pair to a peer namespace virtbench creates, joined by path"}

// GVisorOptions are the gvisor driver's settings.
var GVisorOptions = []drivers.Option{
	{Name: "network", Values: []string{"none", "veth"}, Default: "none",
		Doc: "none: loopback only, in the Sentry's own network stack; veth: an eth0 on a veth pair to a peer namespace virtbench creates, served by the host kernel's stack inside that namespace (netstack=host)"},
	{Name: "platform", Values: []string{"auto", "ptrace", "kvm"}, Default: "auto",
		Doc: "how the Sentry intercepts system calls: auto is kvm where hardware-assisted KVM is usable, else ptrace"},
}

func init() {
	for _, rt := range []string{"runc", "crun"} {
		drivers.Register(drivers.Info{
			Name:           rt,
			Virtualization: "OS-level: the " + rt + " OCI runtime (peer of container)",
			Class:          results.ClassOSLevel,
			Handler:        rt,
			// the runtime in the foreground and the agent
			Estimate: drivers.Estimate{Tasks: 24, MemoryBytes: 16 << 20, Trial: 250 * time.Millisecond},
			Options:  []drivers.Option{NetworkOption},
			Tools:    []drivers.Tool{{Name: rt, Version: []string{rt, "--version"}}},
			Services: true,
			Factory:  func(env drivers.Env) (drivers.Driver, error) { return New(rt, env) },
		})
	}
	drivers.Register(drivers.Info{
		Name:           "gvisor",
		Virtualization: "sandboxed kernel: gVisor (runsc), a user-space kernel that intercepts the container's system calls (ptrace or KVM platform)",
		Class:          results.ClassSandbox,
		Handler:        "runsc",
		// runsc in the foreground, the Sentry and the gofer, each with
		// a thread per core and more
		Estimate: drivers.Estimate{Tasks: 96, MemoryBytes: 96 << 20, Trial: 800 * time.Millisecond},
		Options:  GVisorOptions,
		Tools:    []drivers.Tool{{Name: "runsc", Version: []string{"runsc", "--version"}}},
		Services: true,
		Labels: []results.Label{
			{Key: labelPlatform, Role: results.LabelPlatform, Doc: "the gVisor platform that traps the sandbox's system calls (systrap, ptrace, kvm)"},
			{Key: labelNetstack, Doc: "host: the sandbox uses the host's network stack, not gVisor's own"},
		},
		Factory: func(env drivers.Env) (drivers.Driver, error) { return New("gvisor", env) },
	})
}

// Driver starts containers with an OCI runtime binary.
type Driver struct {
	runtime string // the driver's name
	binary  string // the runtime's executable
	env     drivers.Env
	veth    bool
	// platform is gVisor's, once chosen (auto resolved).
	platform string

	peer vnet.LazyPeer

	once   sync.Once
	rootfs images.Rootfs
	err    error
	// tools is the tools layer, above the rootfs for workloads that need it.
	tools images.LazyTools

	// version is the first line of the runtime's --version, once asked.
	versionOnce sync.Once
	version     string
}

var _ drivers.Driver = (*Driver)(nil)

// New returns a driver for the runtime: runc, crun or gvisor (runsc).
func New(runtime string, env drivers.Env) (*Driver, error) {
	d := &Driver{runtime: runtime, binary: runtime, env: env}
	decls := []drivers.Option{NetworkOption}
	if runtime == "gvisor" {
		d.binary, decls = "runsc", GVisorOptions
	}
	v, err := drivers.ParseOptions(runtime, decls, env.Options)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", runtime, err)
	}
	d.veth, d.platform = v.String("network") == "veth", v.String("platform")
	if d.platform == "auto" {
		d.platform = "ptrace"
		if kvm.Check() == nil {
			d.platform = "kvm"
		}
	}
	return d, nil
}

// globalFlags are the runtime's flags before its command: the state root,
// and gVisor's platform and network mode (veth: the instance has one).
func (d *Driver) globalFlags(root string, veth bool) []string {
	flags := []string{"--root", root}
	if d.runtime != "gvisor" {
		return flags
	}
	network := "none"
	if veth {
		network = "host" // in the container's namespace; see the package doc
	}
	return append(flags, "--platform="+d.platform, "--network="+network)
}

// Name returns the runtime's name.
func (d *Driver) Name() string { return d.runtime }

// brokenIPerf3 is the runsc release whose sandbox breaks most iperf3
// tests' control connection ("unable to receive results: Bad file
// descriptor", "control socket has closed unexpectedly"; Debian's runsc
// of 2022-12 with iperf3 3.12), so the client's throughput is rarely
// reported.
const brokenIPerf3 = "20221219"

// KnownFailure says why this host's runsc fails a workload: iperf3's
// results exchange under the release brokenIPerf3 (drivers.KnownFailer).
func (d *Driver) KnownFailure(workload string) string {
	if d.runtime != "gvisor" || workload != guest.IPerf3Workload {
		return ""
	}
	d.versionOnce.Do(func() {
		out, _ := exec.Command(d.binary, "--version").Output()
		d.version, _, _ = strings.Cut(string(out), "\n")
	})
	if !strings.Contains(d.version, brokenIPerf3) {
		return ""
	}
	return fmt.Sprintf("iperf3's results exchange fails in most tests under this runsc (%s: the sandbox breaks the control connection)", strings.TrimSpace(d.version))
}

func (d *Driver) image() (images.Rootfs, error) {
	d.once.Do(func() { d.rootfs, d.err = images.BuildRootfs(d.env.CacheDir, d.env.Agent, 0) })
	return d.rootfs, d.err
}

// ToolsUsage returns the disk footprint of the tools layer.
func (d *Driver) ToolsUsage() (images.Usage, error) { return d.tools.Usage(d.env.CacheDir) }

// ImageUsage returns the disk footprint of the shared base image.
func (d *Driver) ImageUsage() (images.Usage, error) {
	r, err := d.image()
	if err != nil {
		return images.Usage{}, err
	}
	return images.DiskUsage(r.Dir)
}

// Check finds the runtime and runs one short container with it. Only a
// host that lacks something makes the driver unavailable: no root, no
// runtime binary, or crun on a hybrid cgroup host (crun 1.8 refuses it),
// reported with crun's own words. Any other failure of the probe container
// is the driver's or the runtime's own, and an ordinary error.
func (d *Driver) Check(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return drivers.Unavailable("needs root (run virtbench as root)")
	}
	if err := drivers.NeedBinary(d.binary, d.binary); err != nil {
		return err
	}
	if d.platform == "kvm" {
		if err := kvm.Check(); err != nil {
			return drivers.Unavailable("platform=kvm but hardware-assisted KVM is not usable: %v (use platform=ptrace)", err)
		}
	}
	if _, err := d.image(); err != nil {
		return fmt.Errorf("%s: base image: %w", d.runtime, err)
	}
	err := d.probe(ctx)
	if err != nil && d.runtime == "crun" && cgroups.Hybrid() {
		return drivers.Unavailable("crun cannot run containers on this hybrid cgroup host (cgroup v1 with a v2 hierarchy at %s/unified; boot with systemd.unified_cgroup_hierarchy=1 for cgroup v2): %v", cgroups.Root, err)
	}
	return err
}

// probe starts one idle container, waits for READY and stops it.
func (d *Driver) probe(ctx context.Context) error {
	inst, err := d.Start(ctx, drivers.Spec{ID: "check", Workload: guest.IdleWorkload})
	if err != nil {
		return fmt.Errorf("%s: probe container: %w", d.runtime, err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = inst.Ready(rctx)
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer scancel()
	serr := inst.Stop(sctx)
	if err != nil {
		return fmt.Errorf("%s: probe container: %w", d.runtime, err)
	}
	return serr
}

// Start mounts the instance's overlay root, writes the bundle and runs the
// runtime in the foreground. On error everything created is removed.
func (d *Driver) Start(_ context.Context, spec drivers.Spec) (_ drivers.Instance, err error) {
	begin := time.Now()
	root, err := d.image()
	if err != nil {
		return nil, fmt.Errorf("%s: image: %w", d.runtime, err)
	}
	lower, agent := root.Dir, images.AgentPath
	if spec.Image != nil {
		l, err := images.BuildServiceLayer(d.env.CacheDir, d.env.Agent)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.runtime, err)
		}
		lower, agent = l+":"+spec.Image.Root, images.ServiceAgentPath
	}
	if guest.NeedsTools(spec.Workload) {
		t, err := d.tools.Get(d.env.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.runtime, err)
		}
		lower = t.Root + ":" + lower
	}
	id := drivers.SafeName(spec.ID)
	// A service always gets a veth, for the host's probe.
	inst := &instance{d: d, id: spec.ID, name: "vb-" + filepath.Base(d.env.StateDir) + "-" + id, veth: d.veth || spec.Image != nil}
	defer inst.undo.OnError(&err)
	if err := d.makeBundleDirs(inst, id); err != nil {
		return nil, err
	}
	if err := d.mountRootfs(inst, lower); err != nil {
		return nil, err
	}
	netnsPath, err := d.network(inst)
	if err != nil {
		return nil, err
	}
	nonce := guest.NewNonce()
	if err := d.writeConfig(inst, id, agent, netnsPath, nonce, spec); err != nil {
		return nil, err
	}
	if err := d.run(inst, begin, nonce); err != nil {
		return nil, err
	}
	return inst, nil
}

// makeBundleDirs makes the instance's bundle directory (upper, work,
// rootfs and the runtime's state) and records, before anything outside
// it exists, what clean must undo should virtbench die: the rootfs mount,
// the cgroup and the runtime's state root. The runtime's own process dies
// with virtbench (Pdeathsig); its container is deleted through the
// runtime's state root.
func (d *Driver) makeBundleDirs(inst *instance, id string) error {
	inst.dir = filepath.Join(d.env.StateDir, d.runtime+"-"+id)
	if err := os.Mkdir(inst.dir, 0o700); err != nil {
		return fmt.Errorf("%s: instance directory: %w", d.runtime, err)
	}
	inst.undo.Push(func() error {
		if err := os.RemoveAll(inst.dir); err != nil {
			return fmt.Errorf("%s: %w", d.runtime, err)
		}
		return nil
	})
	for _, p := range []string{"upper", "work", "rootfs", "state"} {
		if err := os.Mkdir(filepath.Join(inst.dir, p), 0o755); err != nil {
			return fmt.Errorf("%s: %w", d.runtime, err)
		}
	}
	cgPath, err := cgroups.RuntimePath(filepath.Base(d.env.StateDir), d.runtime+"-"+id)
	if err != nil {
		return err
	}
	rec := state.Record{
		Driver: d.runtime, Mounts: []string{filepath.Join(inst.dir, "rootfs")}, Cgroups: cgroups.Dirs(cgPath),
		Runtimes: []state.Runtime{{Binary: d.binary, Root: filepath.Join(inst.dir, "state")}},
	}
	if err := state.Write(inst.dir, rec); err != nil {
		return fmt.Errorf("%s: %w", d.runtime, err)
	}
	// The runtime makes the cgroup; virtbench removes it once the
	// container's processes are gone.
	inst.cgPath = cgPath
	inst.undo.Push(func() error { return removeCgroup(cgPath) })
	return nil
}

// mountRootfs mounts the instance's overlay rootfs: the image below, the
// instance's upper directory above.
func (d *Driver) mountRootfs(inst *instance, lower string) error {
	rootfs := filepath.Join(inst.dir, "rootfs")
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, filepath.Join(inst.dir, "upper"), filepath.Join(inst.dir, "work"))
	if err := unix.Mount("overlay", rootfs, "overlay", 0, opts); err != nil {
		return fmt.Errorf("%s: mount overlay: %w", d.runtime, err)
	}
	inst.undo.Push(func() error {
		if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("%s: unmount %s: %w", d.runtime, rootfs, err)
		}
		return nil
	})
	return nil
}

// network returns the path of the instance's network namespace, with a
// veth to virtbench's peer namespace, where the driver gives it one ("":
// the runtime makes a namespace without a network).
func (d *Driver) network(inst *instance) (string, error) {
	if !inst.veth {
		return "", nil
	}
	peer, err := d.peer.Get()
	if err != nil {
		return "", fmt.Errorf("%s: network: %w", d.runtime, err)
	}
	ns, link, err := peer.Namespace("eth0")
	if err != nil {
		return "", fmt.Errorf("%s: network: %w", d.runtime, err)
	}
	// The namespace, and the veth pair in it, go with the last holder.
	inst.undo.Close(ns)
	inst.path = vnet.Path{Peer: peer, Link: link}
	return vnet.NsPath(ns), nil
}

// writeConfig writes the bundle's config.json: the agent (at agent in the
// rootfs) running the spec's workload with the instance's nonce.
func (d *Driver) writeConfig(inst *instance, id, agent, netnsPath string, nonce guest.Nonce, spec drivers.Spec) error {
	cfg := bundleSpec(append([]string{agent, spec.Workload}, spec.Args...), id, inst.cgPath, netnsPath, spec)
	cfg.Process.Env = append(cfg.Process.Env, guest.NonceEnv+"="+string(nonce))
	if d.runtime == "gvisor" {
		// The Sentry is the container's kernel: the agent reports it.
		cfg.Process.Env = append(cfg.Process.Env, guest.KernelInfoEnv+"=1")
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", d.runtime, err)
	}
	if err := os.WriteFile(filepath.Join(inst.dir, "config.json"), b, 0o600); err != nil {
		return fmt.Errorf("%s: %w", d.runtime, err)
	}
	return nil
}

// run starts the runtime's run of the bundle. runsc writes the pid file
// once it made the sandbox, before the container's process runs: the end
// of gVisor's runtime phase. (runc and crun write it only after the
// process ran, so they show none.)
func (d *Driver) run(inst *instance, begin time.Time, nonce guest.Nonce) error {
	args := append(d.globalFlags(filepath.Join(inst.dir, "state"), inst.veth), "run", "--bundle", inst.dir, "--pid-file", filepath.Join(inst.dir, "pid"), inst.name)
	var watch *fileWatch
	if d.runtime == "gvisor" {
		var err error
		if watch, err = watchFile(inst.dir, "pid"); err != nil {
			return fmt.Errorf("%s: %w", d.runtime, err)
		}
	}
	cmd := exec.Command(d.binary, args...)
	cmd.SysProcAttr = &unix.SysProcAttr{Pdeathsig: unix.SIGKILL}
	p, err := agentproc.Start(cmd, begin, nonce)
	if err != nil {
		if watch != nil {
			watch.close()
		}
		return fmt.Errorf("%s: %w", d.runtime, err)
	}
	inst.p = p
	inst.undo.Push(inst.delete)
	if watch != nil {
		go func() {
			defer watch.close()
			select {
			case <-watch.done:
				p.Mark("runtime")
			case <-p.Exited():
			}
		}()
	}
	return nil
}

// ociVersion is the runtime-spec version written to config.json: the one
// Debian 12's runc (1.0.2-dev) and crun 1.8 accept.
const ociVersion = "1.0.2"

// bundleSpec is the OCI configuration: runc's default spec with the
// isolation drivers/container gives. netnsPath, when set, is a network
// namespace to join instead of a new one.
func bundleSpec(args []string, hostname, cgPath, netnsPath string, spec drivers.Spec) *specs.Spec {
	caps := containerinit.DefaultCapNames
	pids := int64(1024)
	s := &specs.Spec{
		Version: ociVersion,
		Process: &specs.Process{
			Args: args,
			// The container has a network namespace of its own: serve on all of it.
			Env: []string{"PATH=/usr/bin:/bin:/sbin", "HOME=/", guest.ListenEnv + "=:0"},
			Cwd: "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: hostname,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: cgPath,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: netnsPath}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			Resources: &specs.LinuxResources{
				Pids: &specs.LinuxPids{Limit: pids},
			},
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if spec.MemoryBytes > 0 {
		limit := spec.MemoryBytes
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	}
	if spec.CPUs > 0 {
		quota, period := int64(spec.CPUs*100000), uint64(100000)
		s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	return s
}

type instance struct {
	d      *Driver
	id     string
	name   string // the runtime's container ID
	dir    string
	cgPath string
	p      *agentproc.Process
	// veth says the instance has a veth (network=veth, or a service's);
	// path is its link to the namespace virtbench made.
	veth bool
	path vnet.Path

	// undo deletes the container and reaps its runtime, then closes the
	// network namespace, unmounts the overlay, removes the cgroup and
	// then the bundle.
	undo undo.Stack
}

var (
	_ drivers.Instance      = (*instance)(nil)
	_ drivers.Exiter        = (*instance)(nil)
	_ drivers.WritableSizer = (*instance)(nil)
	_ drivers.Dialer        = (*instance)(nil)
	_ drivers.PeerRunner    = (*instance)(nil)
)

// Dial connects from the peer namespace to the container's port over its
// veth; without network=veth there is no path and it returns
// ErrNotApplicable.
func (i *instance) Dial(ctx context.Context, port string) (net.Conn, error) {
	return i.path.Dial(ctx, port)
}

// PeerAddr and StartAtPeer serve host programs over the same path as Dial.
func (i *instance) PeerAddr(port string) (string, error) { return i.path.PeerAddr(port) }
func (i *instance) StartAtPeer(cmd *exec.Cmd) error      { return i.path.StartAtPeer(cmd) }

func (i *instance) ID() string                   { return i.id }
func (i *instance) Output() <-chan guest.Message { return i.p.Output() }
func (i *instance) Exited() <-chan struct{}      { return i.p.Exited() }
func (i *instance) ExitErr() error               { return i.p.ExitErr() }
func (i *instance) WaitLine(ctx context.Context, re *regexp.Regexp) (time.Time, error) {
	return i.p.WaitLine(ctx, re)
}

// The label keys of a gVisor instance.
const (
	labelPlatform = "platform"
	labelNetstack = "netstack"
)

// Ready waits for READY; a gVisor instance is labelled with its platform.
func (i *instance) Ready(ctx context.Context) (drivers.Readiness, error) {
	r, err := i.p.Ready(ctx)
	if i.d.runtime == "gvisor" {
		r.Labels = map[string]string{labelPlatform: i.d.platform}
		if i.veth {
			r.Labels[labelNetstack] = "host"
		}
	}
	return r, err
}

// Processes returns the runtime's process and the container's init; for
// gVisor, the processes of its cgroup: the Sentry, the gofer and the
// stubs the Sentry runs the container's threads in (its init is the
// Sentry's, with no host PID of its own).
func (i *instance) Processes() []int32 {
	pids := []int32{int32(i.p.Pid())}
	if i.d.runtime == "gvisor" {
		procs, _ := cgroups.Procs(i.cgPath)
		return append(pids, procs...)
	}
	if b, err := os.ReadFile(filepath.Join(i.dir, "pid")); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			pids = append(pids, int32(n))
		}
	}
	return pids
}

// WritableUsage returns the footprint of the instance's writable layer.
func (i *instance) WritableUsage() (images.Usage, error) {
	return images.DiskUsage(filepath.Join(i.dir, "upper"))
}

// Stop sends SIGTERM to the runtime, which forwards it to the container;
// after the grace period it deletes the container by force. Then it
// unmounts the overlay and removes the cgroup and the bundle.
func (i *instance) Stop(ctx context.Context) error {
	return i.undo.RunAfter(func() error {
		_ = i.p.Signal(unix.SIGTERM)
		i.p.Await(ctx, Grace)
		return nil
	})
}

// delete force-deletes the container unless the runtime has exited, then
// kills and reaps the runtime.
func (i *instance) delete() error {
	var err error
	select {
	case <-i.p.Exited():
	default:
		out, derr := exec.Command(i.d.binary, append(i.d.globalFlags(filepath.Join(i.dir, "state"), i.veth), "delete", "--force", i.name)...).CombinedOutput()
		if derr != nil && !strings.Contains(string(out), "does not exist") && !strings.Contains(string(out), "not found") {
			err = fmt.Errorf("%s delete: %v: %s", i.d.runtime, derr, strings.TrimSpace(string(out)))
		}
	}
	_ = i.p.Kill()
	return err
}

// removeCgroup removes the container's cgroup, and the run's parent once
// empty. The runtime's delete returns before the container's processes
// (gVisor's Sentry and gofer) have all exited; a loaded host takes a while
// to reap them, and their cgroup cannot go before.
func removeCgroup(rel string) error {
	waitEmpty(rel, Grace)
	err := cgroups.RemovePath(rel)
	// While other instances use the parent, removing it fails, which is
	// expected.
	_ = cgroups.RemovePath(filepath.Dir(rel))
	return err
}

// fileWatch reports when a file appears in a directory (inotify: a write
// closed, or a rename into place).
type fileWatch struct {
	f    *os.File // the inotify descriptor, in Go's poller: Close ends a Read
	done chan struct{}
}

// watchFile starts watching dir for name.
func watchFile(dir, name string) (*fileWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify: %w", err)
	}
	w := &fileWatch{f: os.NewFile(uintptr(fd), "inotify"), done: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := w.f.Read(buf)
			if err != nil || n <= 0 {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				end := min(off+unix.SizeofInotifyEvent+int(ev.Len), n)
				if strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:end]), "\x00") == name {
					close(w.done)
					return
				}
				off = end
			}
		}
	}()
	return w, nil
}

// close stops the watch; its reader returns.
func (w *fileWatch) close() { w.f.Close() }

// waitEmpty waits up to d until the cgroup path rel holds no process (or
// is gone).
func waitEmpty(rel string, d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if procs, err := cgroups.Procs(rel); err != nil || len(procs) == 0 {
			return
		}
	}
}
