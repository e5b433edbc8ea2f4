// Package native runs the workload as a plain child process: the baseline
// every other driver is compared with.
package native

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"virtbench/drivers"
	"virtbench/drivers/internal/agentproc"
	"virtbench/drivers/internal/undo"
	"virtbench/guest"
	"virtbench/images"
	"virtbench/internal/results"
	"virtbench/internal/tools"
)

// Grace is how long Stop waits after SIGTERM before SIGKILL.
const Grace = 2 * time.Second

func init() {
	drivers.Register(drivers.Info{
		Name:           "native",
		Virtualization: "none: a plain process, the baseline",
		Class:          results.ClassNone,
		// the Go agent: 6 threads, 4 MiB resident
		Estimate: drivers.Estimate{Tasks: 8, MemoryBytes: 8 << 20, Trial: 150 * time.Millisecond},
		Services: true,
		Factory: func(env drivers.Env) (drivers.Driver, error) {
			return &Driver{agent: env.Agent, cacheDir: env.CacheDir, stateDir: env.StateDir}, nil
		},
	})
}

// Driver starts the agent as a child process in its own process group.
// A workload of the tools layer runs the layer's copies of the host's
// programs, from the image cache (tools.DirEnv).
//
// A service (Spec.Image) runs chrooted in an overlay of its image's root
// and a writable layer of its own, mounted in the host's mount namespace
// under the state directory: no namespace or cgroup of its own.
type Driver struct {
	agent    string
	cacheDir string
	stateDir string

	tools images.LazyTools
}

var _ drivers.Driver = (*Driver)(nil)

// New returns a native driver that runs the agent binary at agent, without
// the tools layer.
func New(agent string) *Driver { return &Driver{agent: agent} }

// Name returns "native".
func (d *Driver) Name() string { return "native" }

// Check reports whether the agent binary can be executed.
func (d *Driver) Check(context.Context) error {
	st, err := os.Stat(d.agent)
	if err != nil {
		return drivers.Unavailable("agent binary: %v (build it with ./run.sh or go build ./cmd/virtbench-guest)", err)
	}
	if st.Mode()&0o111 == 0 {
		return drivers.Unavailable("agent binary %s is not executable", d.agent)
	}
	return nil
}

// ToolsUsage returns the disk footprint of the tools layer's copy in the
// image cache, which native instances of a tools workload run.
func (d *Driver) ToolsUsage() (images.Usage, error) { return d.tools.Usage(d.cacheDir) }

// Start execs the agent. ctx is not tied to the process's lifetime.
func (d *Driver) Start(_ context.Context, spec drivers.Spec) (drivers.Instance, error) {
	begin := time.Now()
	inst := &instance{id: spec.ID}
	args := spec.Args
	if spec.Image != nil {
		root, err := d.serviceRoot(inst, spec)
		if err != nil {
			inst.undo.Run()
			return nil, err
		}
		args = append([]string{"-root", root}, args...)
	}
	cmd := exec.Command(d.agent, append([]string{spec.Workload}, args...)...)
	nonce := guest.NewNonce()
	// The disk workloads (fileio, fio) write to the host's disk: /var/tmp,
	// as /tmp may be a tmpfs (which refuses direct I/O).
	cmd.Env = []string{"PATH=/usr/bin:/bin", "TMPDIR=/var/tmp", guest.NonceEnv + "=" + string(nonce)}
	if guest.NeedsTools(spec.Workload) {
		if d.cacheDir == "" {
			return nil, errors.New("native: no image cache for the tools layer")
		}
		t, err := d.tools.Get(d.cacheDir)
		if err != nil {
			return nil, fmt.Errorf("native: %w", err)
		}
		cmd.Env = append(cmd.Env, tools.DirEnv+"="+t.Prefix)
	}
	// The agent dies with virtbench, even if virtbench is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p, err := agentproc.Start(cmd, begin, nonce, agentproc.WithStartPhase("exec"), agentproc.WithCombinedOutput())
	if err != nil {
		inst.undo.Run()
		return nil, fmt.Errorf("native: %w", err)
	}
	inst.p = p
	inst.undo.Push(p.Kill)
	if spec.Image != nil {
		return serviceInstance{inst}, nil
	}
	return inst, nil
}

// serviceRoot mounts the overlay a service runs chrooted in: its image's
// root beneath a writable layer of the instance's, in the instance's
// directory of the state directory (which `virtbench clean` unmounts
// after a crash).
func (d *Driver) serviceRoot(inst *instance, spec drivers.Spec) (string, error) {
	if d.stateDir == "" {
		return "", errors.New("native: no state directory for a service's root")
	}
	dir := filepath.Join(d.stateDir, "native-"+drivers.SafeName(spec.ID))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("native: %w", err)
	}
	inst.dir = dir
	inst.undo.Push(func() error { return os.RemoveAll(dir) })
	upper, work, root := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "root")
	for _, p := range []string{upper, work, root} {
		if err := os.Mkdir(p, 0o755); err != nil {
			return "", fmt.Errorf("native: %w", err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", spec.Image.Root, upper, work)
	if err := unix.Mount("overlay", root, "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("native: mount the service's root: %w", err)
	}
	inst.undo.Push(func() error {
		if err := unix.Unmount(root, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("native: unmount %s: %w", root, err)
		}
		return nil
	})
	return root, nil
}

type instance struct {
	id  string
	p   *agentproc.Process
	dir string // a service's: its root's overlay; "" otherwise
	// undo kills the agent, and for a service unmounts its root and
	// removes its directory.
	undo undo.Stack
}

func (i *instance) ID() string                                           { return i.id }
func (i *instance) Ready(ctx context.Context) (drivers.Readiness, error) { return i.p.Ready(ctx) }
func (i *instance) Processes() []int32                                   { return []int32{int32(i.p.Pid())} }
func (i *instance) Output() <-chan guest.Message                         { return i.p.Output() }
func (i *instance) Exited() <-chan struct{}                              { return i.p.Exited() }
func (i *instance) ExitErr() error                                       { return i.p.ExitErr() }
func (i *instance) WaitLine(ctx context.Context, re *regexp.Regexp) (time.Time, error) {
	return i.p.WaitLine(ctx, re)
}

// serviceInstance is a service's instance, which has a writable layer.
type serviceInstance struct{ *instance }

// WritableUsage returns the footprint of the service's writable layer.
func (i serviceInstance) WritableUsage() (images.Usage, error) {
	return images.DiskUsage(filepath.Join(i.dir, "upper"))
}

// Dial connects over loopback: the native baseline of the network path.
func (i *instance) Dial(ctx context.Context, port string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", port))
}

// PeerAddr is the port on loopback, where StartAtPeer starts host programs
// as they are.
func (i *instance) PeerAddr(port string) (string, error) {
	return net.JoinHostPort("127.0.0.1", port), nil
}
func (i *instance) StartAtPeer(cmd *exec.Cmd) error { return cmd.Start() }

// Stop sends SIGTERM to the agent's process group, and SIGKILL after Grace.
func (i *instance) Stop(ctx context.Context) error {
	return i.undo.RunAfter(func() error { return i.p.Stop(ctx, Grace) })
}
