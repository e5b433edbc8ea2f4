package guest

import (
	"bufio"
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

// ReadMessages reads console lines from r until EOF or an error, timestamps
// each protocol message marked with n with the host clock and passes it to
// fn. Lines that are not protocol lines go to other, when it is not nil;
// lines longer than MaxLineBytes, malformed protocol lines and lines
// without n's mark are reported to other with a note and otherwise
// dropped. It returns nil at EOF.
func (n Nonce) ReadMessages(r io.Reader, fn func(Message), other func(line []byte)) error {
	br := bufio.NewReaderSize(r, 4096)
	var long bool
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			if !long && len(buf)+len(chunk) > MaxLineBytes {
				long = true
				buf = buf[:0]
			}
			if !long {
				buf = append(buf, chunk...)
			}
			continue
		case err != nil && !errors.Is(err, io.EOF):
			return err
		}
		at := time.Now()
		if len(buf)+len(bytes.TrimSuffix(chunk, []byte("\n"))) > MaxLineBytes {
			long = true
		}
		if long {
			if other != nil {
				other([]byte(fmt.Sprintf("virtbench: dropped a console line longer than %d bytes", MaxLineBytes)))
			}
		} else if len(buf)+len(chunk) > 0 {
			line := chunk
			if len(buf) > 0 {
				line = append(buf, chunk...)
			}
			line = bytes.TrimSuffix(line, []byte("\n"))
			m, perr := n.Parse(line)
			switch {
			case perr == nil:
				m.At = at
				fn(m)
			case other != nil && errors.Is(perr, ErrNotProtocol):
				other(line)
			case other != nil && errors.Is(perr, ErrForged):
				other(fmt.Appendf(nil, "virtbench: %v: %q", perr, truncate(line, 200)))
			case other != nil:
				other([]byte("virtbench: " + perr.Error()))
			}
		}
		long = false
		buf = buf[:0]
		if err != nil {
			return nil
		}
	}
}
