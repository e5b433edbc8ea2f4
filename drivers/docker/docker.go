// Package docker runs the agent in a Docker container through the local
// engine: the container users already have, measured like virtbench's own.
//
// It talks to the engine with the Docker Go client (github.com/moby/moby
// /client) rather than the docker CLI: the client is the same code the CLI
// uses, kept by the same project, and it saves a CLI process start (tens of
// milliseconds) per instance, which would otherwise be counted as the
// container's startup. There is no registry: the image is made from the
// rootfs virtbench builds (images.BuildRootfs) with an import, tagged
// virtbench-agent:HASH and labelled virtbench=agent, so that only images
// virtbench made are ever removed.
//
// Options (scenario "docker.NAME"): see Options.
package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"

	"virtbench/drivers"
	"virtbench/drivers/internal/agentproc"
	"virtbench/drivers/internal/undo"
	"virtbench/drivers/internal/vnet"
	"virtbench/drivers/state"
	"virtbench/guest"
	"virtbench/images"
	"virtbench/internal/results"
	"virtbench/internal/tools"
)

// Grace is how long Stop lets the container handle SIGTERM.
const Grace = 2 * time.Second

// Label marks every image and container virtbench creates in the engine.
const Label = "virtbench"

// ImageRepo is the repository of the images virtbench imports.
const ImageRepo = "virtbench-agent"

// Options are the driver's settings.
var Options = []drivers.Option{
	{Name: "network", Values: []string{"none", "bridge", "veth"}, Default: "none",
		Doc: "none: loopback only; bridge: Docker's default network; veth: no Docker network, an eth0 on a veth pair to a peer namespace virtbench creates"},
	{Name: "scratch", Values: []string{ScratchLayer, ScratchVolume}, Default: ScratchLayer,
		Doc: "where the workload's files go (/tmp): layer: the container's writable layer, through the engine's storage driver; volume: a host directory bound there, past the storage driver (a Kubernetes emptyDir)"},
}

// The scratch settings.
const (
	ScratchLayer  = "layer"
	ScratchVolume = "volume"
)

func init() {
	drivers.Register(drivers.Info{
		Name:           "docker",
		Virtualization: "OS-level: a Docker container through the local engine (containerd, runc, shim)",
		Class:          results.ClassOSLevel,
		// Docker runs its containers with runc.
		Handler: "runc",
		Options: Options,
		Tools:   []drivers.Tool{{Name: "docker", Version: []string{"docker", "version", "--format", "{{.Server.Version}}"}}},
		Labels: []results.Label{
			{Key: labelEngine, Doc: "the container engine that ran the instance"},
			{Key: labelFiles, Role: results.LabelStorage, Doc: "what served the instance's files (/tmp): the engine's storage driver (docker info's Storage Driver), or a bind mount of a host directory (scratch=volume)"},
			{Key: labelNetworkMode, Doc: "the container's network: Docker's network mode, or veth (virtbench's own pair, no Docker network)"},
		},
		// the agent and its containerd shim
		Estimate: drivers.Estimate{Tasks: 24, MemoryBytes: 24 << 20, Trial: 500 * time.Millisecond},
		Services: true,
		Factory:  func(env drivers.Env) (drivers.Driver, error) { return New(env) },
	})
}

// Driver starts Docker containers.
type Driver struct {
	env     drivers.Env
	network string
	scratch string
	// storage is the engine's storage driver, as Check found it.
	storage string

	peer vnet.LazyPeer

	mu  sync.Mutex
	cli *client.Client
	ref string // the imported image, once made
	// loaded are the services' images the engine holds, once put there.
	loaded map[string]bool

	tools images.LazyTools
}

var (
	_ drivers.Driver     = (*Driver)(nil)
	_ drivers.ImageSizer = (*Driver)(nil)
	_ drivers.Daemoner   = (*Driver)(nil)
)

// containerdSockets are where containerd listens: its own service's
// socket, or the one of the containerd dockerd starts itself.
var containerdSockets = []string{"/run/containerd/containerd.sock", "/var/run/docker/containerd/containerd.sock"}

// Daemons returns the PIDs of dockerd (the peer of the engine's socket)
// and of the containerd it uses (the peer of containerd's socket, where
// one answers).
func (d *Driver) Daemons() ([]int32, error) {
	cli, err := d.client()
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	host, ok := strings.CutPrefix(cli.DaemonHost(), "unix://")
	if !ok {
		return nil, fmt.Errorf("docker: the engine at %s is not a local socket: its daemons are not this host's", cli.DaemonHost())
	}
	pid, err := drivers.SocketPeer(host)
	if err != nil {
		return nil, fmt.Errorf("docker: dockerd: %w", err)
	}
	pids := []int32{pid}
	for _, s := range containerdSockets {
		if pid, err := drivers.SocketPeer(s); err == nil {
			return append(pids, pid), nil
		}
	}
	return pids, nil
}

// New returns a Docker driver for env.
func New(env drivers.Env) (*Driver, error) {
	v, err := drivers.ParseOptions("docker", Options, env.Options)
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	return &Driver{env: env, network: v.String("network"), scratch: v.String("scratch")}, nil
}

// Name returns "docker".
func (d *Driver) Name() string { return "docker" }

func (d *Driver) client() (*client.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cli == nil {
		cli, err := client.New(client.FromEnv)
		if err != nil {
			return nil, err
		}
		d.cli = cli
	}
	return d.cli, nil
}

// Check asks the engine whether it answers, and imports the image.
func (d *Driver) Check(ctx context.Context) error {
	cli, err := d.client()
	if err != nil {
		return drivers.Unavailable("docker client: %v", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return drivers.Unavailable("no Docker engine answers (%v): install and start docker.io", err)
	}
	info, err := cli.Info(pctx, client.InfoOptions{})
	if err != nil {
		return fmt.Errorf("docker: info: %w", err)
	}
	d.storage = info.Info.Driver
	// The engine answers: a failure to import the image is the driver's
	// or the engine's own, not a missing capability.
	if _, err := d.image(ctx); err != nil {
		return fmt.Errorf("docker: image: %w", err)
	}
	return nil
}

// image returns the reference of the agent image, importing it on first use.
func (d *Driver) image(ctx context.Context) (string, error) {
	d.mu.Lock()
	ref := d.ref
	d.mu.Unlock()
	if ref != "" {
		return ref, nil
	}
	root, err := images.BuildRootfs(d.env.CacheDir, d.env.Agent, 0)
	if err != nil {
		return "", err
	}
	cli, err := d.client()
	if err != nil {
		return "", err
	}
	ref = ImageRepo + ":" + filepath.Base(root.Dir)
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		if err := importRootfs(ctx, cli, root.Dir, ref); err != nil {
			return "", err
		}
	}
	d.mu.Lock()
	d.ref = ref
	d.mu.Unlock()
	return ref, nil
}

// importRootfs streams dir as a tar archive into the engine as image ref.
func importRootfs(ctx context.Context, cli *client.Client, dir, ref string) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(images.WriteTar(pw, dir)) }()
	rc, err := cli.ImageImport(ctx, client.ImageImportSource{Source: pr, SourceName: "-"}, ref,
		client.ImageImportOptions{Changes: []string{"LABEL " + Label + "=agent"}})
	if err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("docker: import: %w", err)
	}
	return readMessages(rc, "import")
}

// readMessages reads the engine's JSON progress messages of an import or a
// load to their end, and returns the first error one reports.
func readMessages(rc io.ReadCloser, what string) error {
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("docker: %s: %w", what, err)
		}
		if msg.Error != "" {
			return fmt.Errorf("docker: %s: %s", what, msg.Error)
		}
	}
}

// serviceImage returns the engine's reference of a service's image:
// loaded from its docker-archive (`docker load`) the first time, imported
// from a root directory, or the engine's own image.
func (d *Driver) serviceImage(ctx context.Context, svc *images.Service) (string, error) {
	if svc.Source.Transport == images.DockerEngine {
		return svc.Source.Ref, nil
	}
	cli, err := d.client()
	if err != nil {
		return "", err
	}
	ref := svc.Tag
	if svc.Archive == "" { // a root directory
		ref = images.ServiceRepo + ":rootfs-" + drivers.SafeName(strings.ReplaceAll(strings.Trim(svc.Root, "/"), "/", "-"))
	}
	d.mu.Lock()
	defer d.mu.Unlock() // one load at a time
	if d.loaded[ref] {
		return ref, nil
	}
	if err := loadService(ctx, cli, svc, ref); err != nil {
		return "", err
	}
	if d.loaded == nil {
		d.loaded = map[string]bool{}
	}
	d.loaded[ref] = true
	return ref, nil
}

// loadService puts a service's image in the engine as ref, unless it is
// there already: imported from its root directory, or loaded from its
// docker-archive.
func loadService(ctx context.Context, cli *client.Client, svc *images.Service, ref string) error {
	if _, err := cli.ImageInspect(ctx, ref); err == nil {
		return nil
	}
	if svc.Archive == "" {
		return importRootfs(ctx, cli, svc.Root, ref)
	}
	f, err := os.Open(svc.Archive)
	if err != nil {
		return fmt.Errorf("docker: load: %w", err)
	}
	defer f.Close()
	res, err := cli.ImageLoad(ctx, f, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("docker: load: %w", err)
	}
	return readMessages(res, "load")
}

// ToolsUsage returns the disk footprint of the tools layer.
func (d *Driver) ToolsUsage() (images.Usage, error) { return d.tools.Usage(d.env.CacheDir) }

// ImageUsage returns the engine's size of the image.
func (d *Driver) ImageUsage() (images.Usage, error) {
	ctx := context.Background()
	ref, err := d.image(ctx)
	if err != nil {
		return images.Usage{}, err
	}
	cli, err := d.client()
	if err != nil {
		return images.Usage{}, err
	}
	info, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		return images.Usage{}, fmt.Errorf("docker: %w", err)
	}
	return images.Usage{Apparent: info.Size, Allocated: info.Size}, nil
}

// Start creates the container, attaches to its output and starts it: the
// engine's equivalent of "docker run".
func (d *Driver) Start(ctx context.Context, spec drivers.Spec) (_ drivers.Instance, err error) {
	begin := time.Now()
	var ref string
	if spec.Image != nil {
		ref, err = d.serviceImage(ctx, spec.Image)
	} else {
		ref, err = d.image(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("docker: image: %w", err)
	}
	cli, err := d.client()
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	id := drivers.SafeName(spec.ID)
	run := filepath.Base(d.env.StateDir)
	inst := &instance{id: spec.ID, cli: cli, name: "vb-" + run + "-" + id, exited: make(chan struct{})}
	defer inst.undo.OnError(&err)
	if err := d.record(inst, id); err != nil {
		return nil, err
	}
	host := d.hostConfig(spec)
	if spec.Image != nil {
		// The agent, bound read-only where no image has a file, execs the
		// service's command.
		host.Binds = append(host.Binds, d.env.Agent+":"+images.ServiceAgentPath+":ro")
	}
	if guest.NeedsTools(spec.Workload) {
		t, err := d.tools.Get(d.env.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("docker: %w", err)
		}
		// The engine's image is one imported layer; the tools layer is
		// bound read-only beside it, one copy on disk for every container.
		host.Binds = append(host.Binds, t.Prefix+":"+tools.Dir+":ro")
	}
	inst.labels = map[string]string{labelEngine: "docker", labelFiles: d.storage, labelNetworkMode: d.network}
	if d.scratch == ScratchVolume {
		scratch := filepath.Join(d.env.StateDir, "docker-"+id, "scratch")
		if err := os.Mkdir(scratch, 0o1777); err != nil {
			return nil, fmt.Errorf("docker: scratch: %w", err)
		}
		host.Binds = append(host.Binds, scratch+":/tmp")
		inst.labels[labelFiles] = "bind mount"
	}
	nonce := guest.NewNonce()
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: containerConfig(ref, id, run, nonce, spec), HostConfig: host, Name: inst.name})
	if err != nil {
		return nil, fmt.Errorf("docker: create: %w", err)
	}
	inst.cid = created.ID
	inst.undo.Push(inst.remove)
	if err := inst.attach(ctx, begin, nonce); err != nil {
		return nil, err
	}
	// Wait before start, so that a fast exit is not missed.
	wait := cli.ContainerWait(context.WithoutCancel(ctx), created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	go inst.watch(wait)
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return nil, fmt.Errorf("docker: start: %w", err)
	}
	inst.console.Mark("runtime")
	if d.network == "veth" || spec.Image != nil {
		// The agent listens on every address, so the link may come after
		// it started; it is there before Start returns, so before READY
		// is read and load is sent. A service always gets it, for the
		// host's probe.
		if err := d.connect(inst); err != nil {
			return nil, err
		}
	}
	return inst, nil
}

// record makes the instance's directory and records its container's name
// there, before the container exists, so that clean finds it whenever
// virtbench dies.
func (d *Driver) record(inst *instance, id string) error {
	dir := filepath.Join(d.env.StateDir, "docker-"+id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("docker: instance directory: %w", err)
	}
	inst.undo.Push(func() error {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("docker: %w", err)
		}
		return nil
	})
	if err := state.Write(dir, state.Record{Driver: "docker", Containers: []string{inst.name}}); err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	return nil
}

// containerConfig is the container's: the agent of image ref running the
// spec's workload with the instance's nonce (for a service, the agent bound
// into the service's image), labelled with virtbench's run.
func containerConfig(ref, id, run string, nonce guest.Nonce, spec drivers.Spec) *container.Config {
	c := &container.Config{
		Image:        ref,
		Cmd:          append([]string{images.AgentPath, spec.Workload}, spec.Args...),
		Env:          []string{"PATH=/usr/bin:/bin:/sbin", guest.ListenEnv + "=:0", guest.NonceEnv + "=" + string(nonce)},
		Hostname:     id,
		AttachStdout: true,
		AttachStderr: true,
		Labels:       map[string]string{Label: "instance", Label + ".run": run},
	}
	if spec.Image != nil {
		// The agent, bound beside the service's image, execs its command
		// with the service's environment alone.
		c.Entrypoint = []string{images.ServiceAgentPath}
		c.Cmd = append([]string{spec.Workload}, spec.Args...)
		c.Env = []string{guest.NonceEnv + "=" + string(nonce)}
	}
	return c
}

// hostConfig is the container's host configuration: its network mode and
// the spec's limits.
func (d *Driver) hostConfig(spec drivers.Spec) *container.HostConfig {
	pids := int64(1024)
	mode := d.network
	if mode == "veth" || spec.Image != nil {
		mode = "none" // the veth is added after the start
	}
	return &container.HostConfig{
		NetworkMode: container.NetworkMode(mode),
		SecurityOpt: []string{"no-new-privileges"},
		Resources:   container.Resources{Memory: spec.MemoryBytes, PidsLimit: &pids, NanoCPUs: int64(spec.CPUs * 1e9)},
	}
}

// attach attaches to the created container's output and reads the agent's
// lines from it.
func (inst *instance) attach(ctx context.Context, begin time.Time, nonce guest.Nonce) error {
	att, err := inst.cli.ContainerAttach(ctx, inst.cid, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return fmt.Errorf("docker: attach: %w", err)
	}
	inst.undo.Push(func() error {
		att.Close()
		return nil
	})
	inst.console = agentproc.NewConsole(begin, nonce)
	inst.console.Mark("create")
	stdoutR, stdoutW := io.Pipe()
	go inst.console.Read(stdoutR)
	go func() {
		_, err := stdcopy.StdCopy(stdoutW, consoleTail{inst.console}, att.Reader)
		stdoutW.CloseWithError(err)
	}()
	return nil
}

// connect gives the running container's network namespace a veth to
// virtbench's peer namespace.
func (d *Driver) connect(inst *instance) error {
	pids := inst.Processes()
	if len(pids) == 0 {
		return errors.New("docker: network: no PID for the container")
	}
	path, err := d.peer.PathTo(int(pids[0]))
	if err != nil {
		return fmt.Errorf("docker: network: %w", err)
	}
	inst.path = path
	return nil
}

// consoleTail keeps the container's stderr for error messages.
type consoleTail struct{ c *agentproc.Console }

func (t consoleTail) Write(b []byte) (int, error) {
	t.c.Keep(b)
	return len(b), nil
}

type instance struct {
	id, name, cid string
	cli           *client.Client
	console       *agentproc.Console

	exited  chan struct{}
	exitErr error

	pidOnce sync.Once
	pids    []int32

	path vnet.Path // the zero Path without a network option

	labels map[string]string // what Ready reports

	// undo closes the attachment to the container's output, then removes
	// the container, then the instance directory.
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
// veth; without network=veth there is no path of virtbench's own and it
// returns ErrNotApplicable.
func (i *instance) Dial(ctx context.Context, port string) (net.Conn, error) {
	return i.path.Dial(ctx, port)
}

// PeerAddr and StartAtPeer serve host programs over the same path as Dial.
func (i *instance) PeerAddr(port string) (string, error) { return i.path.PeerAddr(port) }
func (i *instance) StartAtPeer(cmd *exec.Cmd) error      { return i.path.StartAtPeer(cmd) }

func (i *instance) watch(wait client.ContainerWaitResult) {
	defer close(i.exited)
	select {
	case w := <-wait.Result:
		i.exitErr = fmt.Errorf("%w with status %d", drivers.ErrExited, w.StatusCode)
	case err := <-wait.Error:
		i.exitErr = fmt.Errorf("%w: %v", drivers.ErrExited, err)
	}
}

func (i *instance) ID() string                   { return i.id }
func (i *instance) Output() <-chan guest.Message { return i.console.Output() }
func (i *instance) WaitLine(ctx context.Context, re *regexp.Regexp) (time.Time, error) {
	return i.console.WaitLine(ctx, re, i.exited)
}
func (i *instance) Exited() <-chan struct{} { return i.exited }

func (i *instance) ExitErr() error {
	select {
	case <-i.exited:
		return i.exitErr
	default:
		return nil
	}
}

// The driver's label keys: the engine that ran an instance, what served
// its files, its network.
const (
	labelEngine      = "engine"
	labelFiles       = "files"
	labelNetworkMode = "network_mode"
)

func (i *instance) Ready(ctx context.Context) (drivers.Readiness, error) {
	r, err := i.console.Ready(ctx, i.exited, i.ExitErr)
	if err == nil {
		r.Labels = i.labels
	}
	return r, err
}

// Processes returns the container's init and its containerd shim.
func (i *instance) Processes() []int32 {
	i.pidOnce.Do(func() {
		info, err := i.cli.ContainerInspect(context.Background(), i.cid, client.ContainerInspectOptions{})
		if err != nil || info.Container.State == nil || info.Container.State.Pid == 0 {
			return
		}
		pid := info.Container.State.Pid
		i.pids = []int32{int32(pid)}
		if ppid := parentOf(pid); ppid > 1 {
			i.pids = append(i.pids, int32(ppid))
		}
	})
	return i.pids
}

// parentOf returns pid's parent PID, or 0.
func parentOf(pid int) int {
	st, err := state.ReadStat(pid)
	if err != nil {
		return 0
	}
	return st.PPid
}

// WritableUsage returns the engine's size of the container's writable layer.
func (i *instance) WritableUsage() (images.Usage, error) {
	info, err := i.cli.ContainerInspect(context.Background(), i.cid, client.ContainerInspectOptions{Size: true})
	if err != nil {
		return images.Usage{}, fmt.Errorf("docker: %w", err)
	}
	if info.Container.SizeRw == nil {
		return images.Usage{}, drivers.ErrNotApplicable
	}
	size := *info.Container.SizeRw
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
		if _, err := i.cli.ContainerStop(context.WithoutCancel(ctx), i.cid, client.ContainerStopOptions{Timeout: &timeout}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("docker: stop: %w", err)
		}
		return nil
	})
}

// remove removes the container, by force.
func (i *instance) remove() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := i.cli.ContainerRemove(ctx, i.cid, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker: remove: %w", err)
	}
	return nil
}

// Images returns the IDs of the images virtbench imported (label
// virtbench=agent) or loaded (a service's, images.ServiceRepo).
func Images(ctx context.Context) (map[string]bool, error) {
	list, cli, err := agentImages(ctx)
	if err != nil {
		return nil, err
	}
	cli.Close()
	ids := map[string]bool{}
	for _, im := range list {
		ids[im.ID] = true
	}
	return ids, nil
}

// RemoveImages removes every image virtbench imported (label
// virtbench=agent) or loaded (images.ServiceRepo) but those whose IDs keep
// holds, and returns their tags.
func RemoveImages(ctx context.Context, keep map[string]bool) ([]string, error) {
	list, cli, err := agentImages(ctx)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	var removed []string
	for _, im := range list {
		if keep[im.ID] {
			continue
		}
		if _, err := cli.ImageRemove(ctx, im.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			return removed, fmt.Errorf("docker: remove image %s: %w", im.ID, err)
		}
		removed = append(removed, strings.Join(im.RepoTags, ","))
	}
	return removed, nil
}

// agentImages lists the images labelled virtbench=agent and the services'
// images virtbench loaded, with the client
// it asked, which the caller closes.
func agentImages(ctx context.Context) ([]image.Summary, *client.Client, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, nil, err
	}
	var items []image.Summary
	for _, f := range []client.Filters{make(client.Filters).Add("label", Label+"=agent"), make(client.Filters).Add("reference", images.ServiceRepo)} {
		list, err := cli.ImageList(ctx, client.ImageListOptions{Filters: f})
		if err != nil {
			cli.Close()
			return nil, nil, fmt.Errorf("docker: %w", err)
		}
		items = append(items, list.Items...)
	}
	return items, cli, nil
}
