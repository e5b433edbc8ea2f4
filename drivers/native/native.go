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
	"syscall"
	"time"

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
		Factory: func(env drivers.Env) (drivers.Driver, error) {
			return &Driver{agent: env.Agent, cacheDir: env.CacheDir}, nil
		},
	})
}

// Driver starts the agent as a child process in its own process group.
// A workload of the tools layer runs the layer's copies of the host's
// programs, from the image cache (tools.DirEnv).
type Driver struct {
	agent    string
	cacheDir string

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
	cmd := exec.Command(d.agent, append([]string{spec.Workload}, spec.Args...)...)
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
		return nil, fmt.Errorf("native: %w", err)
	}
	inst := &instance{id: spec.ID, p: p}
	inst.undo.Push(p.Kill)
	return inst, nil
}

type instance struct {
	id string
	p  *agentproc.Process
	// undo kills the agent: all a native instance holds.
	undo undo.Stack
}

func (i *instance) ID() string                                           { return i.id }
func (i *instance) Ready(ctx context.Context) (drivers.Readiness, error) { return i.p.Ready(ctx) }
func (i *instance) Processes() []int32                                   { return []int32{int32(i.p.Pid())} }
func (i *instance) Output() <-chan guest.Message                         { return i.p.Output() }
func (i *instance) Exited() <-chan struct{}                              { return i.p.Exited() }
func (i *instance) ExitErr() error                                       { return i.p.ExitErr() }

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
