// Package agentproc runs a host process whose stdout carries the guest
// protocol: the agent itself (native), a container's init, a runtime run in
// the foreground, or a VMM with the guest console on stdout. It turns the
// console into READY and output messages, watches the process exit, and
// stops the whole process group.
package agentproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
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
// allocated per instance, and only once there is a message or a reader
// (an idle instance at a density sweep's top has neither), so a larger
// one costs the harness memory at density counts.
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

	drained chan struct{}

	mu         sync.Mutex
	out        chan guest.Message // see outChan
	tail       []byte
	hook       func(line []byte)
	phases     []drivers.Phase
	startPhase string // see WithStartPhase
	combined   bool   // see WithCombinedOutput
	// watches are the WaitLine calls waiting for a line.
	watches []lineWatch
}

// lineWatch is one WaitLine call's regexp and where its match goes.
type lineWatch struct {
	re *regexp.Regexp
	at chan time.Time // buffered: the first match's arrival
}

// NewConsole returns a console for an instance whose start began at begin,
// accepting only protocol lines marked with nonce (guest.Nonce): the one
// the driver gave the instance's agent.
func NewConsole(begin time.Time, nonce guest.Nonce) *Console {
	return &Console{
		begin:   begin,
		nonce:   nonce,
		readyCh: make(chan struct{}),
		drained: make(chan struct{}),
	}
}

// Process is a started process with a protocol console.
type Process struct {
	*Console
	proc    *os.Process
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
// called on the package's poller (Start) or Read's goroutine, never
// concurrently with itself; it must not block, since the poller reads
// every process's console, and must not keep line.
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
// as one stream: non-protocol lines from either are kept for errors. It
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
// cmd.Stdout and cmd.Stderr must be nil, and cmd must not be made by
// exec.CommandContext: the process is reaped through cmd.Process, never
// cmd.Wait, and is stopped by Stop or Kill.
//
// While it runs, a process holds no goroutine and no OS thread of the
// harness: the package's one poller reads its pipes and notes its exit on
// a pidfd. Only reaping it takes a goroutine, for a moment.
func Start(cmd *exec.Cmd, begin time.Time, nonce guest.Nonce, opts ...Option) (*Process, error) {
	c := NewConsole(begin, nonce)
	for _, o := range opts {
		o(c)
	}
	pl, err := getPoller()
	if err != nil {
		return nil, err
	}
	stdoutR, stderrR, pidfd, err := spawn(cmd, c.combined)
	if err != nil {
		return nil, err
	}
	// The process keeps only cmd's os.Process, so that the command's
	// arguments, environment and files are the collector's once it runs.
	p := &Process{Console: c, proc: cmd.Process, exited: make(chan struct{}), outputDone: make(chan struct{})}
	if p.startPhase != "" {
		p.Mark(p.startPhase)
	}
	if err := p.watch(pl, stdoutR, stderrR, pidfd); err != nil {
		return nil, err
	}
	return p, nil
}

// spawn starts cmd in a new process group with its stdout and stderr on
// pipes, one for both when combined, and returns their read ends and the
// process's pidfd (-1 on a kernel without pidfds).
func spawn(cmd *exec.Cmd, combined bool) (stdoutR, stderrR, pidfd int, err error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	pidfd = -1
	cmd.SysProcAttr.PidFD = &pidfd
	stdoutR, stdoutW, err := pipe()
	if err != nil {
		return -1, -1, -1, err
	}
	stderrR, stderrW := stdoutR, stdoutW
	if !combined {
		if stderrR, stderrW, err = pipe(); err != nil {
			unix.Close(stdoutR)
			stdoutW.Close()
			return -1, -1, -1, err
		}
	}
	cmd.Stdout, cmd.Stderr = stdoutW, stderrW
	err = cmd.Start()
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		unix.Close(stdoutR)
		if !combined {
			unix.Close(stderrR)
		}
		return -1, -1, -1, fmt.Errorf("agentproc: start %s: %w", cmd.Path, err)
	}
	return stdoutR, stderrR, pidfd, nil
}

// watch registers the process's pipes (stderrR is stdoutR when they are
// combined) and pidfd with the poller. A registration fails only with the
// poller's resources exhausted: the process must not run unwatched, so
// it is killed, and what was not registered is closed and reaped here.
func (p *Process) watch(pl *poller, stdoutR, stderrR, pidfd int) error {
	c := p.Console
	nPipes := 2
	if c.combined {
		nPipes = 1
	}
	p.streams.Store(int32(nPipes))
	var errs []error
	unwatched := func(fd int, err error) {
		errs = append(errs, err)
		_ = syscall.Kill(-p.proc.Pid, syscall.SIGKILL)
		unix.Close(fd)
	}
	watchPipe := func(fd int, write func([]byte), eof func()) {
		if err := pl.watchPipe(fd, write, eof); err != nil {
			unwatched(fd, err)
			eof()
		}
	}
	lines := c.nonce.Lines(c.deliver, c.Keep)
	watchPipe(stdoutR, func(b []byte) { lines.Write(b) }, func() {
		lines.Close()
		close(c.outChan())
		close(c.drained)
		p.streamDone()
	})
	if !c.combined {
		st := &pieces{keep: c.Keep}
		watchPipe(stderrR, st.write, func() {
			st.flush()
			p.streamDone()
		})
	}
	reap := func() {
		go func() {
			st, err := p.proc.Wait()
			if err == nil && !st.Success() {
				err = &exec.ExitError{ProcessState: st} // as cmd.Wait says it
			}
			p.exitErr = err
			close(p.exited)
		}()
	}
	switch {
	case pidfd < 0:
		// A kernel before 5.2 has no pidfd: the reaping goroutine blocks
		// in wait4 instead, holding a thread.
		reap()
	case len(errs) > 0:
		unix.Close(pidfd)
		reap()
	default:
		if err := pl.watchExit(pidfd, reap); err != nil {
			unwatched(pidfd, err)
			reap()
		}
	}
	return errors.Join(errs...)
}

// pipe returns a pipe whose read end, the harness's, is non-blocking for
// the poller; the process writes to its end as it would to any pipe.
func pipe() (r int, w *os.File, err error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return -1, nil, fmt.Errorf("agentproc: pipe: %w", err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return -1, nil, fmt.Errorf("agentproc: pipe: %w", err)
	}
	return fds[0], os.NewFile(uintptr(fds[1]), "pipe"), nil
}

// streamDone counts one output stream at EOF and closes outputDone after
// the last.
func (p *Process) streamDone() {
	if p.streams.Add(-1) == 0 {
		close(p.outputDone)
	}
}

// pieces passes a process's stderr to keep line by line, a line longer
// than stderrBuffer in pieces.
type pieces struct {
	part []byte
	keep func([]byte)
}

func (s *pieces) write(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			s.part = append(s.part, b...)
			if len(s.part) >= stderrBuffer {
				s.flush()
			}
			return
		}
		if len(s.part) == 0 {
			s.keep(b[:i+1])
		} else {
			s.part = append(s.part, b[:i+1]...)
			s.flush()
		}
		b = b[i+1:]
	}
}

// flush keeps the incomplete line as it is.
func (s *pieces) flush() {
	if len(s.part) > 0 {
		s.keep(s.part)
	}
	s.part = nil
}

// Read reads console lines from r until EOF, then closes Output.
func (c *Console) Read(r io.Reader) {
	defer close(c.drained)
	defer close(c.outChan())
	_ = c.nonce.ReadMessages(r, c.deliver, c.Keep)
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
	case c.outChan() <- m:
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
	if c.hook != nil || len(c.watches) > 0 {
		c.passLines(b, time.Now())
	}
	c.tail = append(c.tail, b...)
	if b[len(b)-1] != '\n' {
		c.tail = append(c.tail, '\n')
	}
	if len(c.tail) > tailBytes {
		c.tail = c.tail[len(c.tail)-tailBytes:]
	}
}

// passLines passes each line of b, which arrived at now, to the line hook
// and to the WaitLine calls whose regexp it matches. c.mu is held.
func (c *Console) passLines(b []byte, now time.Time) {
	for line := range bytes.Lines(b) {
		line = bytes.TrimRight(line, "\r\n")
		if c.hook != nil {
			c.hook(line)
		}
		c.watches = slices.DeleteFunc(c.watches, func(w lineWatch) bool {
			if !w.re.Match(line) {
				return false
			}
			w.at <- now
			return true
		})
	}
}

// WaitLine waits for a line of non-protocol output that matches re and
// returns when it arrived; a line already in the kept tail counts at the
// call's time. It fails when exited closes or ctx ends first
// (drivers.LineWaiter).
func (c *Console) WaitLine(ctx context.Context, re *regexp.Regexp, exited <-chan struct{}) (time.Time, error) {
	w := lineWatch{re: re, at: make(chan time.Time, 1)}
	c.mu.Lock()
	for line := range bytes.Lines(c.tail) {
		if re.Match(bytes.TrimRight(line, "\r\n")) {
			c.mu.Unlock()
			return time.Now(), nil
		}
	}
	c.watches = append(c.watches, w)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.watches = slices.DeleteFunc(c.watches, func(x lineWatch) bool { return x.at == w.at })
		c.mu.Unlock()
	}()
	select {
	case at := <-w.at:
		return at, nil
	case <-exited:
		select {
		case at := <-w.at:
			return at, nil
		default:
		}
		return time.Time{}, fmt.Errorf("%w before a line matched %q; its last output: %s", drivers.ErrExited, re, c.Tail())
	case <-ctx.Done():
		return time.Time{}, fmt.Errorf("%w: no line matched %q: %w", drivers.ErrNotReady, re, ctx.Err())
	}
}

// WaitLine is Console.WaitLine until the process exits.
func (p *Process) WaitLine(ctx context.Context, re *regexp.Regexp) (time.Time, error) {
	return p.Console.WaitLine(ctx, re, p.exited)
}

// Tail returns the last non-protocol output, trimmed, for error messages.
func (c *Console) Tail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.TrimSpace(string(c.tail))
}

// Pid returns the process ID.
func (p *Process) Pid() int { return p.proc.Pid }

// Output delivers RESULT, DONE and ERROR messages; it is closed at console EOF.
func (c *Console) Output() <-chan guest.Message { return c.outChan() }

// outChan returns the channel of Output, making it the first time.
func (c *Console) outChan() chan guest.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out == nil {
		c.out = make(chan guest.Message, outputBuffer)
	}
	return c.out
}

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

// Status returns what cmd.Wait would have returned for the process: nil
// for a zero exit status. Valid after Exited is closed. A driver whose
// process hands the console on and exits (podman run -d) reads its
// success here.
func (p *Process) Status() error {
	<-p.exited
	return p.exitErr
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
	err := syscall.Kill(-p.proc.Pid, sig)
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
	p.Await(ctx, grace)
	return p.Kill()
}

// Await waits until the process has exited, grace has passed or ctx has
// ended, whichever comes first: the wait of a stop between asking the
// process to end and killing it.
func (p *Process) Await(ctx context.Context, grace time.Duration) {
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
	case <-ctx.Done():
	}
}

// Kill sends SIGKILL to the process group and waits until the process has
// been reaped.
func (p *Process) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("agentproc: SIGKILL: %w", err)
	}
	<-p.exited
	// Kill what is left of the group (children that outlived the leader).
	_ = syscall.Kill(-p.proc.Pid, syscall.SIGKILL)
	return nil
}
