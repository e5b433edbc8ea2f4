// Package agentproc runs a host process whose stdout carries the guest
// protocol: the agent itself (native), a container's init, a runtime run in
// the foreground, or a VMM with the guest console on stdout. It turns the
// console into READY and output messages, watches the process exit, and
// stops the whole process group.
package agentproc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

// Console turns a stream of console lines into READY and output messages
// and keeps the last non-protocol output for error messages.
type Console struct {
	begin time.Time

	readyOnce sync.Once
	readyCh   chan struct{}
	readyMsg  guest.Message

	out     chan guest.Message
	drained chan struct{}

	mu         sync.Mutex
	tail       []byte
	hook       func(line []byte)
	phases     []drivers.Phase
	startPhase string // see WithStartPhase
}

// NewConsole returns a console for an instance whose start began at begin.
func NewConsole(begin time.Time) *Console {
	return &Console{
		begin:   begin,
		readyCh: make(chan struct{}),
		out:     make(chan guest.Message, outputBuffer),
		drained: make(chan struct{}),
	}
}

// Process is a started process with a protocol console.
type Process struct {
	*Console
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
	// outputDone is closed when both stdout and stderr reached EOF.
	outputDone chan struct{}
}

// Option configures Start.
type Option func(*Console)

// WithLineHook calls hook with every console line that is not a protocol
// line (stdout and stderr alike), before the line is kept for the tail. A
// driver uses it to recognise what matters wherever it appears, such as a
// guest kernel's panic headline that precedes a long stack trace. hook is
// called from the reading goroutines, never concurrently with itself.
func WithLineHook(hook func(line []byte)) Option {
	return func(c *Console) { c.hook = hook }
}

// WithStartPhase marks the moment the process exists (exec returned) as
// the start phase name ("exec" for a plain process, "runtime" when the
// process is the container the runtime made).
func WithStartPhase(name string) Option {
	return func(c *Console) { c.startPhase = name }
}

// Mark records now as the end of the start phase name: a host-side moment
// the driver sees between the start's beginning and READY. Phases marked
// after READY are left out of the Readiness.
func (c *Console) Mark(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.phases = append(c.phases, drivers.Phase{Name: name, At: time.Now()})
}

// Start starts cmd in a new process group with stdout and stderr attached to
// the console reader. begin is when the driver began work for the instance.
// cmd.Stdout and cmd.Stderr must be nil.
func Start(cmd *exec.Cmd, begin time.Time, opts ...Option) (*Process, error) {
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
	p := &Process{Console: NewConsole(begin), cmd: cmd, exited: make(chan struct{}), outputDone: make(chan struct{})}
	for _, o := range opts {
		o(p.Console)
	}
	if p.startPhase != "" {
		p.Mark(p.startPhase)
	}
	stderrDone := make(chan struct{})
	go func() {
		defer stdoutR.Close()
		p.Read(stdoutR)
	}()
	go func() {
		defer close(stderrDone)
		p.readStderr(stderrR)
	}()
	go func() {
		<-p.drained
		<-stderrDone
		close(p.outputDone)
	}()
	go func() {
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Read reads console lines from r until EOF, then closes Output.
func (c *Console) Read(r io.Reader) {
	defer close(c.drained)
	defer close(c.out)
	_ = guest.ReadMessages(r, c.deliver, c.Keep)
}

// readStderr keeps stderr line by line (a line longer than the reader's
// buffer in pieces) until EOF.
func (p *Process) readStderr(r *os.File) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 4096)
	for {
		line, err := br.ReadSlice('\n')
		p.Keep(line)
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

func (c *Console) deliver(m guest.Message) {
	if m.Kind == guest.KindReady {
		c.readyOnce.Do(func() {
			c.readyMsg = m
			close(c.readyCh)
		})
		return
	}
	select {
	case c.out <- m:
	default: // a guest flooding its console loses the excess
	}
}

// Keep remembers the last tailBytes of non-protocol output, after passing
// each of its lines to the console's line hook, if any.
func (c *Console) Keep(b []byte) {
	if len(b) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hook != nil {
		for line := range bytes.Lines(b) {
			c.hook(bytes.TrimRight(line, "\r\n"))
		}
	}
	c.tail = append(c.tail, b...)
	if b[len(b)-1] != '\n' {
		c.tail = append(c.tail, '\n')
	}
	if len(c.tail) > tailBytes {
		c.tail = c.tail[len(c.tail)-tailBytes:]
	}
}

// Tail returns the last non-protocol output, trimmed, for error messages.
func (c *Console) Tail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.TrimSpace(string(c.tail))
}

// Pid returns the process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output delivers RESULT, DONE and ERROR messages; it is closed at console EOF.
func (c *Console) Output() <-chan guest.Message { return c.out }

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

// Ready waits for the READY line of the process. When the process exits
// first, the error is built once both stdout and stderr reached EOF (at
// most DrainWait after the exit), so it carries the process's last words.
func (p *Process) Ready(ctx context.Context) (drivers.Readiness, error) {
	return p.Console.ready(ctx, p.exited, p.ExitErr, p.outputDone)
}

// OutputDone is closed when every output stream of the process (stdout and
// stderr) has reached EOF.
func (p *Process) OutputDone() <-chan struct{} { return p.outputDone }

// DrainWait bounds how long Ready waits, once the process exited, for the
// rest of its output: the bound is for a pipe that some other process
// (a child that outlived it) keeps open.
const DrainWait = 5 * time.Second

// Ready waits for the READY line. It returns with exitErr's error when
// exited closes first (once the console reached EOF, at most DrainWait
// later), and with ErrNotReady when ctx ends first. A console fed by one
// reader that also carries the other streams (Docker's multiplexed
// attach) has drained them all when Read returns.
func (c *Console) Ready(ctx context.Context, exited <-chan struct{}, exitErr func() error) (drivers.Readiness, error) {
	return c.ready(ctx, exited, exitErr, c.drained)
}

func (c *Console) ready(ctx context.Context, exited <-chan struct{}, exitErr func() error, drained <-chan struct{}) (drivers.Readiness, error) {
	select {
	case <-c.readyCh:
		return c.readiness(), nil
	default:
	}
	select {
	case <-c.readyCh:
		return c.readiness(), nil
	case <-exited:
		// The READY line, or the last words of the error, may still be in
		// the pipes; a loaded host can take a while to drain them.
		select {
		case <-drained:
		case <-time.After(DrainWait):
		}
		select {
		case <-c.readyCh:
			return c.readiness(), nil
		default:
		}
		return drivers.Readiness{}, c.withTail(fmt.Errorf("%w before READY", exitErr()))
	case <-ctx.Done():
		return drivers.Readiness{}, c.withTail(fmt.Errorf("%w: %w", drivers.ErrNotReady, context.Cause(ctx)))
	}
}

func (c *Console) withTail(err error) error {
	if t := c.Tail(); t != "" {
		return fmt.Errorf("%w; last output: %s", err, t)
	}
	return err
}

func (c *Console) readiness() drivers.Readiness {
	r := drivers.Readiness{Begin: c.begin, At: c.readyMsg.At, Guest: *c.readyMsg.Ready}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ph := range c.phases {
		if ph.At.Before(r.At) {
			r.Phases = append(r.Phases, ph)
		}
	}
	return r
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
