// Package podman runs the agent in a Podman container: the daemonless
// engine of many Linux hosts, run as its users run it, "podman run -d".
//
// Each start is one podman command. It asks conmon to run the container
// with the OCI runtime and returns once the container runs, leaving conmon
// as the container's monitor: there is no daemon, so a container costs a
// conmon beside its own processes. The agent's console is handed straight
// to the container (--log-driver passthrough): virtbench reads it on the
// pipe it gave podman, with no log file between.
//
// Podman keeps its images, containers and state in a store of virtbench's
// own (state.PodmanStore), never the host's: its images in virtbench's
// cache, kept across runs as Docker's engine keeps them, its per-boot
// state beneath /run/virtbench. The agent image is imported into it from
// the rootfs virtbench builds (images.BuildRootfs), as drivers/docker
// imports it into Docker; RemoveStore removes the whole store. The
// containers' cgroups and their conmons' are made beneath virtbench's own
// (--cgroup-parent, cgroupfs: no systemd is assumed). A containers.conf of
// the store's own sets no default rlimits: Podman raises RLIMIT_NOFILE for
// a rootful container by default, which fails where virtbench runs
// without CAP_SYS_RESOURCE (in a container, say); it is read instead of
// the host's, whose settings would otherwise vary the figures by host.
//
// Options (scenario "podman.NAME"): see Options.
package podman

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// Label marks every image and container virtbench creates in its store.
const Label = "virtbench"

// ImageRepo is the repository of the images virtbench imports.
const ImageRepo = "virtbench-agent"

// MinVersion is the oldest Podman the driver runs: passthrough logging
// came with Podman 4.
const MinVersion = 4

// Options are the driver's settings.
var Options = []drivers.Option{
	{Name: "network", Values: []string{"none", "veth"}, Default: "none",
		Doc: "none: loopback only; veth: no Podman network, an eth0 on a veth pair to a peer namespace virtbench creates"},
	{Name: "runtime", Values: []string{"runc", "crun"}, Default: "runc",
		Doc: "the OCI runtime Podman runs (Podman's own default is crun, which refuses hybrid cgroup hosts)"},
}

func init() {
	drivers.Register(drivers.Info{
		Name:           "podman",
		Virtualization: "OS-level: a Podman container, daemonless (podman run -d: conmon and an OCI runtime)",
		Class:          results.ClassOSLevel,
		Handler:        "runc",
		Options:        Options,
		Tools:          []drivers.Tool{{Name: "podman", Version: []string{"podman", "version", "--format", "{{.Client.Version}}"}}},
		// the agent and its conmon
		Estimate: drivers.Estimate{Tasks: 16, MemoryBytes: 16 << 20, Trial: 500 * time.Millisecond},
		Factory:  func(env drivers.Env) (drivers.Driver, error) { return New(env) },
	})
}

// Driver starts Podman containers.
type Driver struct {
	env     drivers.Env
	network string
	store   state.PodmanStore
	// conf is the store's containers.conf.
	conf string

	peer  vnet.LazyPeer
	tools images.LazyTools

	// live counts the instances started and not yet removed: the last
	// one removes the cgroup their conmons shared.
	live atomic.Int32

	mu  sync.Mutex
	ref string // the imported image, once made
}

var (
	_ drivers.Driver     = (*Driver)(nil)
	_ drivers.ImageSizer = (*Driver)(nil)
	_ drivers.ToolsSizer = (*Driver)(nil)
)

// New returns a Podman driver for env.
func New(env drivers.Env) (*Driver, error) {
	v, err := drivers.ParseOptions("podman", Options, env.Options)
	if err != nil {
		return nil, fmt.Errorf("podman: %w", err)
	}
	store := Store(env.CacheDir)
	store.Runtime = v.String("runtime")
	return &Driver{env: env, network: v.String("network"), store: store, conf: confPath(env.CacheDir)}, nil
}

// Store returns virtbench's Podman store for the cache directory cache,
// with Podman's default runtime left unset: the images in cache, the
// per-boot state in a directory of HostRoot named for the cache, short
// enough for Podman.
func Store(cache string) state.PodmanStore {
	root := filepath.Join(cache, "podman", "root")
	sum := sha256.Sum256([]byte(root))
	boot := filepath.Join(state.HostRoot, "podman-"+hex.EncodeToString(sum[:6]))
	return state.PodmanStore{Root: root, RunRoot: filepath.Join(boot, "run"), TmpDir: filepath.Join(boot, "tmp")}
}

// confPath is the store's containers.conf.
func confPath(cache string) string { return filepath.Join(cache, "podman", "containers.conf") }

// RemoveStore removes virtbench's Podman store for the cache directory
// cache (its containers, images and per-boot state), when there is one.
// It removes the store's containers with podman and the rest as files:
// podman system reset would also remove networks, whose configuration is
// the host's, not the store's.
func RemoveStore(cache string) error {
	s := Store(cache)
	if _, err := os.Stat(s.Root); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	s.Runtime = "runc"
	cmd := exec.Command("podman", append(s.Args(), "rm", "--all", "--force", "--time", "0")...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+confPath(cache))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("podman: rm: %w: %s", err, strings.TrimSpace(string(out)))
	}
	// Podman's overlay driver keeps its directory mounted on itself.
	mounts := state.MountsUnder(filepath.Dir(s.Root))
	slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("podman: unmount %s: %w", m, err)
		}
	}
	return errors.Join(os.RemoveAll(filepath.Dir(s.Root)), os.RemoveAll(filepath.Dir(s.RunRoot)))
}

// Name returns "podman".
func (d *Driver) Name() string { return "podman" }

// command returns a podman command on the run's store, bound to ctx.
func (d *Driver) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "podman", append(d.store.Args(), args...)...)
	cmd.Env = d.environ()
	return cmd
}

// environ is podman's environment: virtbench's, with the store's
// containers.conf read instead of the host's.
func (d *Driver) environ() []string { return append(os.Environ(), "CONTAINERS_CONF="+d.conf) }

// podman runs a podman command on the run's store and returns its stdout.
func (d *Driver) podman(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := d.command(ctx, args...)
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("podman %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// Check finds podman and its runtime, makes the run's store and imports
// the image.
func (d *Driver) Check(ctx context.Context) error {
	if _, err := exec.LookPath("podman"); err != nil {
		return drivers.Unavailable("podman is not installed: apt-get install podman")
	}
	if _, err := exec.LookPath(d.store.Runtime); err != nil {
		return drivers.Unavailable("%s (Podman's runtime, option runtime) is not installed: apt-get install %s", d.store.Runtime, d.store.Runtime)
	}
	if os.Geteuid() != 0 {
		return drivers.Unavailable("the podman driver runs rootful Podman: run virtbench as root")
	}
	if d.store.Runtime == "crun" && cgroups.Hybrid() {
		return drivers.Unavailable("crun cannot run containers on this hybrid cgroup host: use podman.runtime=runc")
	}
	out, err := exec.CommandContext(ctx, "podman", "version", "--format", "{{.Client.Version}}").Output()
	if err != nil {
		return drivers.Unavailable("podman version: %v", err)
	}
	major, _, _ := strings.Cut(strings.TrimSpace(string(out)), ".")
	if n, err := strconv.Atoi(major); err != nil || n < MinVersion {
		return drivers.Unavailable("podman %s is older than %d.0 (no passthrough logging): install a newer podman", strings.TrimSpace(string(out)), MinVersion)
	}
	// podman runs: a failure from here on is the driver's or Podman's own.
	if _, err := d.image(ctx); err != nil {
		return fmt.Errorf("podman: image: %w", err)
	}
	return nil
}

// containersConf is the store's containers.conf: no default rlimits.
const containersConf = "# virtbench's own, read only by its podman commands\n[containers]\ndefault_ulimits = []\n"

// image returns the reference of the agent image, importing it into the
// store on first use.
func (d *Driver) image(ctx context.Context) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ref != "" {
		return d.ref, nil
	}
	root, err := images.BuildRootfs(d.env.CacheDir, d.env.Agent, 0)
	if err != nil {
		return "", err
	}
	for _, dir := range []string{d.store.Root, d.store.RunRoot, d.store.TmpDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("podman: store: %w", err)
		}
	}
	if err := os.WriteFile(d.conf, []byte(containersConf), 0o600); err != nil {
		return "", fmt.Errorf("podman: store: %w", err)
	}
	ref := ImageRepo + ":" + filepath.Base(root.Dir)
	if _, err := d.podman(ctx, nil, "image", "exists", ref); err != nil {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(images.WriteTar(pw, root.Dir)) }()
		_, err := d.podman(ctx, pr, "import", "--quiet", "--change", "LABEL "+Label+"=agent", "-", ref)
		pr.CloseWithError(errors.New("podman import ended"))
		if err != nil {
			return "", err
		}
	}
	d.ref = ref
	return ref, nil
}

// ToolsUsage returns the disk footprint of the tools layer.
func (d *Driver) ToolsUsage() (images.Usage, error) { return d.tools.Usage(d.env.CacheDir) }

// ImageUsage returns Podman's size of the image.
func (d *Driver) ImageUsage() (images.Usage, error) {
	ctx := context.Background()
	ref, err := d.image(ctx)
	if err != nil {
		return images.Usage{}, err
	}
	out, err := d.podman(ctx, nil, "image", "inspect", "--format", "{{.Size}}", ref)
	if err != nil {
		return images.Usage{}, err
	}
	size, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		return images.Usage{}, fmt.Errorf("podman: image size %q: %w", out, err)
	}
	return images.Usage{Apparent: size, Allocated: size}, nil
}

// Start runs "podman run -d" for the instance and waits for it to return:
// the container runs, its console on the pipes agentproc reads.
func (d *Driver) Start(ctx context.Context, spec drivers.Spec) (_ drivers.Instance, err error) {
	begin := time.Now()
	ref, err := d.image(ctx)
	if err != nil {
		return nil, fmt.Errorf("podman: image: %w", err)
	}
	id := drivers.SafeName(spec.ID)
	run := filepath.Base(d.env.StateDir)
	inst := &instance{id: spec.ID, d: d, name: "vb-" + run + "-" + id}
	defer inst.undo.OnError(&err)
	parent, err := cgroups.RuntimePath(run, "")
	if err != nil {
		return nil, fmt.Errorf("podman: %w", err)
	}
	if err := d.record(inst, id, parent); err != nil {
		return nil, err
	}
	nonce := guest.NewNonce()
	args, err := d.runArgs(spec, inst.name, parent, ref, nonce)
	if err != nil {
		return nil, err
	}
	// Not bound to ctx: agentproc reaps the command, and a start that
	// outlives ctx is killed below.
	cmd := exec.Command("podman", append(d.store.Args(), args...)...)
	cmd.Env = d.environ()
	p, err := agentproc.Start(cmd, begin, nonce)
	if err != nil {
		return nil, fmt.Errorf("podman: %w", err)
	}
	inst.p = p
	d.live.Add(1)
	inst.undo.Push(inst.remove)
	select {
	case <-p.Exited():
	case <-ctx.Done():
		_ = p.Kill()
		return nil, fmt.Errorf("podman run: %w", context.Cause(ctx))
	}
	if err := p.Status(); err != nil {
		return nil, fmt.Errorf("podman run: %w: %s", err, p.Tail())
	}
	p.Mark("runtime")
	if d.network == "veth" {
		if err := d.connect(inst); err != nil {
			return nil, err
		}
	}
	return inst, nil
}

// runArgs returns the podman run command line of the instance named name:
// the spec's agent and workload in image ref, its limits, the cgroup
// parent, the console passed through and no network of Podman's.
func (d *Driver) runArgs(spec drivers.Spec, name, parent, ref string, nonce guest.Nonce) ([]string, error) {
	args := []string{"run", "--detach", "--name", name, "--hostname", drivers.SafeName(spec.ID),
		"--log-driver", "passthrough", "--network", "none", "--cgroup-parent", parent,
		"--pids-limit", "1024", "--security-opt", "no-new-privileges",
		"--label", Label + "=instance", "--label", Label + ".run=" + filepath.Base(d.env.StateDir),
		"--env", "PATH=/usr/bin:/bin:/sbin", "--env", guest.ListenEnv + "=:0", "--env", guest.NonceEnv + "=" + string(nonce)}
	if spec.MemoryBytes > 0 {
		args = append(args, "--memory", strconv.FormatInt(spec.MemoryBytes, 10))
	}
	if spec.CPUs > 0 {
		args = append(args, "--cpus", strconv.FormatFloat(spec.CPUs, 'f', -1, 64))
	}
	if guest.NeedsTools(spec.Workload) {
		t, err := d.tools.Get(d.env.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("podman: %w", err)
		}
		args = append(args, "--volume", t.Prefix+":"+tools.Dir+":ro")
	}
	args = append(args, ref, images.AgentPath, spec.Workload)
	return append(args, spec.Args...), nil
}

// record makes the instance's directory and records there its container's
// name, the store, and the conmons' cgroup beneath the cgroup parent (the
// container's own goes with the container), before the container exists,
// so that clean finds them whenever virtbench dies.
func (d *Driver) record(inst *instance, id, parent string) error {
	dir := filepath.Join(d.env.StateDir, "podman-"+id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("podman: instance directory: %w", err)
	}
	inst.undo.Push(func() error {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("podman: %w", err)
		}
		return nil
	})
	store := d.store
	if err := state.Write(dir, state.Record{Driver: "podman", Containers: []string{inst.name}, Podman: &store, Cgroups: cgroups.Dirs(filepath.Join(parent, "conmon"))}); err != nil {
		return fmt.Errorf("podman: %w", err)
	}
	return nil
}

// connect gives the running container's network namespace a veth to
// virtbench's peer namespace.
func (d *Driver) connect(inst *instance) error {
	pids := inst.Processes()
	if len(pids) == 0 {
		return errors.New("podman: network: no PID for the container")
	}
	path, err := d.peer.PathTo(int(pids[0]))
	if err != nil {
		return fmt.Errorf("podman: network: %w", err)
	}
	inst.Path = path
	return nil
}

type instance struct {
	id, name string
	d        *Driver
	// p is the podman run command; once it returned, its pipes are the
	// container's console, and their end is the container's exit.
	p *agentproc.Process

	pidOnce sync.Once
	pids    []int32
	cgroup  string // the container's cgroup path, once Processes found it

	exitOnce sync.Once
	exitErr  error

	// Path serves Dial, PeerAddr and StartAtPeer over the container's
	// veth; the zero Path, which returns ErrNotApplicable, without
	// network=veth.
	vnet.Path

	// undo removes the container, then the instance directory.
	undo undo.Stack
}

var (
	_ drivers.Instance      = (*instance)(nil)
	_ drivers.Exiter        = (*instance)(nil)
	_ drivers.WritableSizer = (*instance)(nil)
	_ drivers.Dialer        = (*instance)(nil)
	_ drivers.PeerRunner    = (*instance)(nil)
)

func (i *instance) ID() string                   { return i.id }
func (i *instance) Output() <-chan guest.Message { return i.p.Output() }

// Exited is closed when the container's console closed: its processes,
// which alone hold it once podman run returned, are gone.
func (i *instance) Exited() <-chan struct{} { return i.p.OutputDone() }

// ExitErr reports the container's exit status, as Podman recorded it.
func (i *instance) ExitErr() error {
	select {
	case <-i.Exited():
	default:
		return nil
	}
	i.exitOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		code, err := i.d.podman(ctx, nil, "inspect", "--format", "{{.State.ExitCode}}", i.name)
		if err != nil {
			i.exitErr = fmt.Errorf("%w (status unknown: %v)", drivers.ErrExited, err)
			return
		}
		i.exitErr = fmt.Errorf("%w with status %s", drivers.ErrExited, code)
	})
	return i.exitErr
}

func (i *instance) Ready(ctx context.Context) (drivers.Readiness, error) {
	return i.p.Console.Ready(ctx, i.Exited(), i.ExitErr)
}

// Processes returns the container's init and its conmon.
func (i *instance) Processes() []int32 {
	i.pidOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := i.d.podman(ctx, nil, "inspect", "--format", "{{.State.Pid}} {{.State.ConmonPid}} {{.State.CgroupPath}}", i.name)
		if err != nil {
			return
		}
		f := strings.Fields(out)
		for _, s := range f[:min(len(f), 2)] {
			if pid, err := strconv.ParseInt(s, 10, 32); err == nil && pid > 0 {
				i.pids = append(i.pids, int32(pid))
			}
		}
		if len(f) == 3 {
			i.cgroup = f[2]
		}
	})
	return i.pids
}

// WritableUsage returns Podman's size of the container's writable layer.
func (i *instance) WritableUsage() (images.Usage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := i.d.podman(ctx, nil, "container", "inspect", "--size", "--format", "{{.SizeRw}}", i.name)
	if err != nil {
		return images.Usage{}, err
	}
	size, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		return images.Usage{}, fmt.Errorf("podman: writable layer size %q: %w", out, err)
	}
	return images.Usage{Apparent: size, Allocated: size}, nil
}

// Stop stops the container (SIGTERM, then SIGKILL after the grace period)
// and removes it.
func (i *instance) Stop(ctx context.Context) error {
	return i.undo.RunAfter(func() error {
		timeout := int(Grace / time.Second)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < Grace {
			timeout = 0
		}
		if _, err := i.d.podman(context.WithoutCancel(ctx), nil, "stop", "--time", strconv.Itoa(timeout), i.name); err != nil && !strings.Contains(err.Error(), "no container with") {
			return fmt.Errorf("podman: %w", err)
		}
		return nil
	})
}

// remove removes the container, by force, and the cgroup Podman made for
// it beneath the run's; the conmons' shared cgroup and the run's go with
// the last instance.
func (i *instance) remove() error {
	_ = i.p.Kill() // podman run, should it be left running
	i.Processes()  // the cgroup path, while the container exists
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := i.d.podman(ctx, nil, "rm", "--force", "--time", "0", i.name)
	if err != nil && strings.Contains(err.Error(), "no container with") {
		err = nil
	}
	if i.cgroup != "" {
		err = errors.Join(err, cgroups.RemovePath(i.cgroup))
	}
	if i.d.live.Add(-1) == 0 {
		i.d.removeConmonCgroup()
	}
	return err
}

// ConmonWait bounds how long the last instance's Stop waits for the
// conmons' cgroup to empty: a conmon, whose parent is the host's init
// once podman run returned, holds it until init reaps it, which some
// inits do only every few seconds.
const ConmonWait = 5 * time.Second

// removeConmonCgroup removes the conmons' cgroup and the run's, once no
// instance runs.
func (d *Driver) removeConmonCgroup() {
	parent, err := cgroups.RuntimePath(filepath.Base(d.env.StateDir), "")
	if err != nil {
		return
	}
	conmon := filepath.Join(parent, "conmon")
	for end := time.Now().Add(ConmonWait); cgroups.RemovePath(conmon) != nil && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	_ = cgroups.RemovePath(parent) // busy should an instance have started since
}
