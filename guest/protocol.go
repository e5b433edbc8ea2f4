package guest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Prefix starts every protocol line.
const Prefix = "VIRTBENCH "

// MaxLineBytes bounds one console line. Longer lines are discarded, so a
// hostile or broken guest cannot make the host allocate without bound.
const MaxLineBytes = 64 << 10

// Kind is the type of a protocol message.
type Kind string

// The message kinds.
const (
	KindReady  Kind = "READY"
	KindResult Kind = "RESULT"
	KindDone   Kind = "DONE"
	KindError  Kind = "ERROR"
)

// Ready is the payload of a READY message.
type Ready struct {
	Workload string `json:"workload"`
	// UptimeSec is the guest's own uptime when it became ready. Inside a VM
	// it is the in-guest boot phase; natively it is the host's uptime and
	// meaningless as a duration.
	UptimeSec float64 `json:"uptime_s,omitempty"`
	// VCPUSec is, inside a VM, how long its virtual CPU had run when the
	// agent became ready (see VCPUSeconds): the guest's whole boot, which
	// UptimeSec undercounts.
	VCPUSec float64 `json:"vcpu_s,omitempty"`
	// Addr is the listening address of a server workload.
	Addr string `json:"addr,omitempty"`
	// Kernel and Mitigations describe the kernel the agent runs on (its
	// release, and Mitigations' summary of its CPU vulnerability
	// mitigations) where that kernel is the instance's own: a VM's, a
	// sandboxed kernel's. Empty on the host's kernel.
	Kernel      string `json:"kernel,omitempty"`
	Mitigations string `json:"mitigations,omitempty"`
	// Boot, inside a VM, are the stages of its boot on its kernel's clock
	// (BootMilestones), read from the kernel's log after the clocks.
	Boot []Milestone `json:"boot,omitempty"`
	// Setup, in a container init or a VM restored from a snapshot, are the
	// ends of its setup's stages on CLOCK_MONOTONIC (Agent.Step,
	// Agent.AddSteps), in order.
	Setup []Milestone `json:"setup,omitempty"`
	// MonoSec, where Setup has steps, is CLOCK_MONOTONIC as READY was
	// written: a host that does not share the clock (a VM's) places the
	// steps by their distance to READY.
	MonoSec float64 `json:"mono_s,omitempty"`
}

// Result is the payload of a RESULT message: one measured value.
type Result struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Detail is optional text, e.g. the hostname a probe saw.
	Detail string `json:"detail,omitempty"`
	// Unmeasured, where set, says why the result could not be measured
	// (Value is then no figure): the host records a failure that says so.
	Unmeasured string `json:"unmeasured,omitempty"`
}

// Error is the payload of an ERROR message.
type Error struct {
	Msg string `json:"msg"`
}

// Message is one parsed protocol line.
type Message struct {
	Kind Kind
	// At is when the host read the line; zero inside the guest.
	At     time.Time
	Ready  *Ready
	Result *Result
	Error  *Error
}

// Nonce is an instance's secret mark on its protocol lines: the host
// makes one per instance (NewNonce) and gives it to the agent (NonceEnv,
// or NonceParam on a VM's kernel command line, or in a restored VM's
// Workload line); the agent writes it into every protocol line, and the
// host's reader accepts only lines that carry it. Text a workload prints
// (an error echoing an argument, a program's output on the same console)
// cannot forge a READY or a RESULT without knowing it. The zero Nonce
// marks nothing and accepts only unmarked lines: an agent run by hand.
type Nonce string

// NonceEnv carries the nonce in the agent's environment.
const NonceEnv = "VIRTBENCH_NONCE"

// NonceParam carries the nonce on a VM's kernel command line.
const NonceParam = "virtbench.nonce"

// NewNonce returns a fresh random nonce: 16 lowercase hex digits.
func NewNonce() Nonce {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on Linux 3.17 and later.
		panic(fmt.Sprintf("guest: nonce: %v", err))
	}
	return Nonce(hex.EncodeToString(b))
}

// Valid reports whether n is a nonce NewNonce could make (or the zero
// Nonce): what the agent accepts from its environment.
func (n Nonce) Valid() bool {
	if len(n) != 0 && len(n) != 16 {
		return false
	}
	_, err := hex.DecodeString(string(n))
	return err == nil && strings.ToLower(string(n)) == string(n)
}

// mark is what starts n's protocol lines: Prefix, then n and a space.
func (n Nonce) mark() []byte {
	if n == "" {
		return []byte(Prefix)
	}
	return []byte(Prefix + string(n) + " ")
}

// Format returns the protocol line for kind and payload, marked with n,
// with a trailing newline.
func (n Nonce) Format(kind Kind, payload any) []byte {
	if payload == nil {
		payload = struct{}{}
	}
	b, err := json.Marshal(payload)
	if err != nil {
		// The payload types above always marshal; reaching this is a bug.
		panic(fmt.Sprintf("guest: marshal %s: %v", kind, err))
	}
	mark := n.mark()
	line := make([]byte, 0, len(mark)+len(kind)+len(b)+2)
	line = append(line, mark...)
	line = append(line, kind...)
	line = append(line, ' ')
	line = append(line, b...)
	return append(line, '\n')
}

// ErrNotProtocol reports a line that does not start with Prefix.
var ErrNotProtocol = errors.New("guest: not a protocol line")

// ErrForged reports a line that looks like a protocol line but lacks the
// instance's nonce: text the workload printed, not the agent's message.
var ErrForged = errors.New("guest: a protocol line without this instance's nonce, ignored")

// Parse parses one line (without its newline) marked with n. Lines that
// do not contain Prefix return ErrNotProtocol; lines that contain it
// without n's mark return ErrForged; malformed protocol lines return
// another error.
func (n Nonce) Parse(line []byte) (Message, error) {
	line = bytes.TrimRight(line, "\r")
	// A serial console may put kernel output before the mark on the same line.
	mark := n.mark()
	i := bytes.Index(line, mark)
	if i < 0 {
		if bytes.Contains(line, []byte(Prefix)) && n != "" {
			return Message{}, ErrForged
		}
		return Message{}, ErrNotProtocol
	}
	rest := line[i+len(mark):]
	kind, payload, _ := bytes.Cut(rest, []byte(" "))
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = []byte("{}")
	}
	m := Message{Kind: Kind(kind)}
	var target any
	switch m.Kind {
	case KindReady:
		m.Ready = new(Ready)
		target = m.Ready
	case KindResult:
		m.Result = new(Result)
		target = m.Result
	case KindError:
		m.Error = new(Error)
		target = m.Error
	case KindDone:
		target = new(struct{})
	default:
		return Message{}, fmt.Errorf("guest: unknown message kind %q", truncate(kind, 32))
	}
	if err := json.Unmarshal(payload, target); err != nil {
		return Message{}, fmt.Errorf("guest: bad %s payload: %w", m.Kind, err)
	}
	if m.Kind == KindResult && m.Result.Name == "" {
		return Message{}, fmt.Errorf("guest: RESULT without a name")
	}
	return m, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// ReadMessages reads console lines from r until EOF or an error and
// handles each as a Lines from n.Lines(fn, other) does. It returns nil at
// EOF.
func (n Nonce) ReadMessages(r io.Reader, fn func(Message), other func(line []byte)) error {
	l := n.Lines(fn, other)
	_, err := io.CopyBuffer(l, r, make([]byte, 4096))
	l.Close()
	return err
}

// Lines is a console reader that is handed the console's bytes as they
// arrive (Write), for a caller that reads many consoles itself. It
// timestamps each protocol message marked with its nonce with the host
// clock when its line is complete, and passes it to fn. Lines that are not
// protocol lines go to other, when it is not nil; lines longer than
// MaxLineBytes, malformed protocol lines and lines without the nonce's
// mark are reported to other with a note and otherwise dropped. Between
// writes it keeps only an incomplete last line. A Lines is not safe for
// concurrent use; fn and other must not keep the slices they are given.
type Lines struct {
	n     Nonce
	fn    func(Message)
	other func(line []byte)
	part  []byte // the incomplete last line
	long  bool   // the incomplete line passed MaxLineBytes: it is dropped at its end
}

// linesKeep is the capacity of an incomplete line's buffer that a Lines
// keeps once the line is complete; a larger one is released.
const linesKeep = 4096

// Lines returns a Lines that accepts the protocol lines marked with n.
func (n Nonce) Lines(fn func(Message), other func(line []byte)) *Lines {
	return &Lines{n: n, fn: fn, other: other}
}

// Write handles every line that p completes and keeps the rest. It never
// fails.
func (l *Lines) Write(p []byte) (int, error) {
	written := len(p)
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			break
		}
		line := p[:i]
		if len(l.part) > 0 || l.long {
			l.keep(line)
			line = l.part
		}
		l.handle(line, l.long || len(line) > MaxLineBytes)
		p = p[i+1:]
	}
	l.keep(p)
	return written, nil
}

// Close handles the incomplete last line, a console's output that ended
// without a newline.
func (l *Lines) Close() error {
	if len(l.part) > 0 || l.long {
		l.handle(l.part, l.long)
	}
	l.part = nil
	return nil
}

// keep adds p to the incomplete line, or drops it once the line is too long.
func (l *Lines) keep(p []byte) {
	switch {
	case l.long || len(p) == 0:
	case len(l.part)+len(p) > MaxLineBytes:
		l.long, l.part = true, nil
	default:
		l.part = append(l.part, p...)
	}
}

// handle handles one complete line and forgets the incomplete one.
func (l *Lines) handle(line []byte, long bool) {
	at := time.Now()
	if long {
		if l.other != nil {
			l.other([]byte(fmt.Sprintf("virtbench: dropped a console line longer than %d bytes", MaxLineBytes)))
		}
	} else {
		m, err := l.n.Parse(line)
		switch {
		case err == nil:
			m.At = at
			l.fn(m)
		case l.other != nil && errors.Is(err, ErrNotProtocol):
			l.other(line)
		case l.other != nil && errors.Is(err, ErrForged):
			l.other(fmt.Appendf(nil, "virtbench: %v: %q", err, truncate(line, 200)))
		case l.other != nil:
			l.other([]byte("virtbench: " + err.Error()))
		}
	}
	l.long = false
	l.part = l.part[:0]
	if cap(l.part) > linesKeep {
		l.part = nil
	}
}
