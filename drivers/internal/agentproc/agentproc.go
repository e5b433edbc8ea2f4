// Package agentproc runs a host process whose stdout carries the guest
// protocol: the agent itself (native), a container's init, a runtime run in
// the foreground, or a VMM with the guest console on stdout. It turns the
// console into READY and output messages, watches the process exit, and
// stops the whole process group.
package agentproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"virtbench/drivers"
	"virtbench/guest"
)

// outputBuffer is how many RESULT/DONE/ERROR messages wait for a reader
// before further ones are dropped; a workload reports a handful.
const outputBuffer = 256

// tailBytes is how much of the process's other output is kept for errors.
const tailBytes = 2048

// Process is a started process with a protocol console.
type Process struct {
	cmd   *exec.Cmd
	begin time.Time

	readyOnce sync.Once
	readyCh   chan struct{}
	readyMsg  guest.Message

	out     chan guest.Message
	exited  chan struct{}
	exitErr error
	drained chan struct{}

	mu      sync.Mutex
	tail    []byte
	dropped int
}

// Start starts cmd in a new process group with stdout and stderr attached to
// the console reader. begin is when the driver began work for the instance.
// cmd.Stdout and cmd.Stderr must be nil.
func Start(cmd *exec.Cmd, begin time.Time) (*Process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("agentproc: %w", err)
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdoutR.Close()
		stdoutW.Close()
		return nil, fmt.Errorf("agentproc: %w", err)
	}
	cmd.Stdout, cmd.Stderr = stdoutW, stderrW
	err = cmd.Start()
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		stdoutR.Close()
		stderrR.Close()
		return nil, fmt.Errorf("agentproc: start %s: %w", cmd.Path, err)
	}
	p := &Process{
		cmd:     cmd,
		begin:   begin,
		readyCh: make(chan struct{}),
		out:     make(chan guest.Message, outputBuffer),
		exited:  make(chan struct{}),
		drained: make(chan struct{}),
	}
	go p.readConsole(stdoutR)
	go p.readStderr(stderrR)
	go func() {
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *Process) readConsole(r *os.File) {
	defer close(p.drained)
	defer close(p.out)
	defer r.Close()
	_ = guest.ReadMessages(r, p.deliver, p.keep)
}

func (p *Process) readStderr(r *os.File) {
	defer r.Close()
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			p.keep(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

func (p *Process) deliver(m guest.Message) {
	if m.Kind == guest.KindReady {
		p.readyOnce.Do(func() {
			p.readyMsg = m
			close(p.readyCh)
		})
		return
	}
	select {
	case p.out <- m:
	default:
		p.mu.Lock()
		p.dropped++
		p.mu.Unlock()
	}
}

// keep remembers the last tailBytes of non-protocol output.
func (p *Process) keep(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tail = append(p.tail, b...)
	if b[len(b)-1] != '\n' {
		p.tail = append(p.tail, '\n')
	}
	if len(p.tail) > tailBytes {
		p.tail = p.tail[len(p.tail)-tailBytes:]
	}
}

// Tail returns the last non-protocol output, trimmed, for error messages.
func (p *Process) Tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.TrimSpace(string(p.tail))
}

// Pid returns the process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output delivers RESULT, DONE and ERROR messages; it is closed at console EOF.
func (p *Process) Output() <-chan guest.Message { return p.out }

// Exited is closed when the process has exited and been reaped.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitErr describes how the process exited; valid after Exited is closed.
func (p *Process) ExitErr() error {
	select {
	case <-p.exited:
	default:
		return nil
	}
	if p.exitErr == nil {
		return fmt.Errorf("%w with status 0", drivers.ErrExited)
	}
	return fmt.Errorf("%w: %v", drivers.ErrExited, p.exitErr)
}

// Ready waits for the READY line. phases are added to the Readiness.
func (p *Process) Ready(ctx context.Context) (drivers.Readiness, error) {
	select {
	case <-p.readyCh:
		return p.readiness(), nil
	default:
	}
	select {
	case <-p.readyCh:
		return p.readiness(), nil
	case <-p.exited:
		// The READY line may still be in the pipe.
		select {
		case <-p.readyCh:
			return p.readiness(), nil
		case <-p.drained:
		case <-time.After(100 * time.Millisecond):
		}
		select {
		case <-p.readyCh:
			return p.readiness(), nil
		default:
		}
		return drivers.Readiness{}, p.withTail(fmt.Errorf("%w before READY", p.ExitErr()))
	case <-ctx.Done():
		return drivers.Readiness{}, p.withTail(fmt.Errorf("%w: %w", drivers.ErrNotReady, context.Cause(ctx)))
	}
}

func (p *Process) withTail(err error) error {
	if t := p.Tail(); t != "" {
		return fmt.Errorf("%w; last output: %s", err, t)
	}
	return err
}

func (p *Process) readiness() drivers.Readiness {
	return drivers.Readiness{Begin: p.begin, At: p.readyMsg.At, Guest: *p.readyMsg.Ready}
}

// Signal sends sig to the whole process group.
func (p *Process) Signal(sig syscall.Signal) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	err := syscall.Kill(-p.cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// Stop sends SIGTERM to the process group, then SIGKILL when grace passes or
// ctx ends, and waits until the process has been reaped. It returns nil when
// the process exited, whatever its status.
func (p *Process) Stop(ctx context.Context, grace time.Duration) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("agentproc: SIGTERM: %w", err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
	case <-ctx.Done():
	}
	return p.Kill()
}

// Kill sends SIGKILL to the process group and waits until the process has
// been reaped.
func (p *Process) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("agentproc: SIGKILL: %w", err)
	}
	<-p.exited
	// Kill what is left of the group (children that outlived the leader).
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	return nil
}
