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
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"virtbench/drivers"
	"virtbench/guest"
)

// outputBuffer is how many RESULT/DONE/ERROR messages wait for a reader
// before further ones are dropped; a workload reports a handful (the
// probe workload the most: eleven RESULTs and a DONE). The buffer is
// allocated per instance, so a larger one costs the harness memory at
// density counts.
const outputBuffer = 16

// stderrBuffer is the read size for a process's stderr, which is only
// kept for error messages: longer lines are kept in pieces.
const stderrBuffer = 512

// tailBytes is how much of the process's other output is kept for errors.
const tailBytes = 2048

// Console turns a stream of console lines into READY and output messages
// and keeps the last non-protocol output for error messages.
type Console struct {
	begin time.Time
	nonce guest.Nonce

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
	combined   bool   // see WithCombinedOutput
}

// NewConsole returns a console for an instance whose start began at begin,
// accepting only protocol lines marked with nonce (guest.Nonce): the one
// the driver gave the instance's agent.
func NewConsole(begin time.Time, nonce guest.Nonce) *Console {
	return &Console{
		begin:   begin,
		nonce:   nonce,
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
	// outputDone is closed when every output stream reached EOF; streams
	// counts those still open.
	outputDone chan struct{}
	streams    atomic.Int32
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

// WithCombinedOutput gives the process one pipe for stdout and stderr, read
// by one goroutine: non-protocol lines from either are kept for errors. It
// suits a process that writes each protocol line with one write(2) (the
// agent: a pipe keeps writes of up to 4 KiB whole), not one whose console
// output arrives in pieces (a VMM's serial console), where a line on stderr
// could split a protocol line.
func WithCombinedOutput() Option {
	return func(c *Console) { c.combined = true }
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
// the console reader. begin is when the driver began work for the instance;
// nonce is the one its agent marks its lines with (see NewConsole).
// cmd.Stdout and cmd.Stderr must be nil.
//
// Per process, the harness holds two goroutines (three without
// WithCombinedOutput) and no OS thread: the exit is awaited on a pidfd
// through the runtime's poller, not in a blocking wait4, which would hold
// a thread per process (a thousand at a density sweep's top).
func Start(cmd *exec.Cmd, begin time.Time, nonce guest.Nonce, opts ...Option) (*Process, error) {
	c := NewConsole(begin, nonce)
	for _, o := range opts {
		o(c)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	pidfd := -1
	cmd.SysProcAttr.PidFD = &pidfd
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("agentproc: %w", err)
	}
	stderrR, stderrW := stdoutR, stdoutW
	if !c.combined {
		if stderrR, stderrW, err = os.Pipe(); err != nil {
			stdoutR.Close()
			stdoutW.Close()
			return nil, fmt.Errorf("agentproc: %w", err)
		}
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
	p := &Process{Console: c, cmd: cmd, exited: make(chan struct{}), outputDone: make(chan struct{})}
	if p.startPhase != "" {
		p.Mark(p.startPhase)
	}
	p.streams.Store(1)
	if !c.combined {
		p.streams.Store(2)
		go func() {
			defer p.streamDone()
			p.readStderr(stderrR)
		}()
	}
	go func() {
		defer p.streamDone()
		defer stdoutR.Close()
		p.Read(stdoutR)
	}()
	go func() {
		awaitExit(pidfd)
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// streamDone counts one output stream at EOF and closes outputDone after
// the last.
func (p *Process) streamDone() {
	if p.streams.Add(-1) == 0 {
		close(p.outputDone)
	}
}

// awaitExit returns once the process of pidfd has exited (it is then a
// zombie, and wait4 returns at once), and closes pidfd. The goroutine
// parks in the runtime's poller meanwhile. Without a pidfd (-1: a kernel
// before 5.2) it returns at once and the caller's wait blocks instead.
func awaitExit(pidfd int) {
	if pidfd < 0 {
		return
	}
	if err := syscall.SetNonblock(pidfd, true); err != nil {
		syscall.Close(pidfd)
		return
	}
	f := os.NewFile(uintptr(pidfd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	// A pidfd polls readable once its process has exited.
	_ = rc.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		return err != nil || n > 0
	})
}

// Read reads console lines from r until EOF, then closes Output.
func (c *Console) Read(r io.Reader) {
	defer close(c.drained)
	defer close(c.out)
	_ = c.nonce.ReadMessages(r, c.deliver, c.Keep)
}

// readStderr keeps stderr line by line (a line longer than the reader's
// buffer in pieces) until EOF.
func (p *Process) readStderr(r *os.File) {
	defer r.Close()
	br := bufio.NewReaderSize(r, stderrBuffer)
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
	default: // a guest flooding its console loses the excess, noted
		c.Keep(fmt.Appendf(nil, "virtbench: dropped a %s message: %d were waiting for a reader", m.Kind, outputBuffer))
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
