package guest

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		line    string
		want    Message
		wantErr string
	}{
		{line: `VIRTBENCH READY {"workload":"idle","uptime_s":1.5}`, want: Message{Kind: KindReady, Ready: &Ready{Workload: "idle", UptimeSec: 1.5}}},
		{line: `VIRTBENCH RESULT {"name":"cpu.sha256","value":12.5,"unit":"op/s"}`, want: Message{Kind: KindResult, Result: &Result{Name: "cpu.sha256", Value: 12.5, Unit: "op/s"}}},
		{line: `VIRTBENCH DONE {}`, want: Message{Kind: KindDone}},
		{line: `VIRTBENCH DONE`, want: Message{Kind: KindDone}},
		{line: "VIRTBENCH ERROR {\"msg\":\"boom\"}\r", want: Message{Kind: KindError, Error: &Error{Msg: "boom"}}},
		{line: `[    1.234] random: crng init done VIRTBENCH READY {"workload":"idle"}`, want: Message{Kind: KindReady, Ready: &Ready{Workload: "idle"}}},
		{line: `[    0.000] Linux version 6.1`, wantErr: "not a protocol line"},
		{line: `VIRTBENCH HELLO {}`, wantErr: "unknown message kind"},
		{line: `VIRTBENCH RESULT {"value":1}`, wantErr: "without a name"},
		{line: `VIRTBENCH READY {"workload":`, wantErr: "bad READY payload"},
	}
	for _, tt := range tests {
		got, err := Nonce("").Parse([]byte(tt.line))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) error = %v, want %q", tt.line, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.line, err)
			continue
		}
		if got.Kind != tt.want.Kind || !eq(got.Ready, tt.want.Ready) || !eq(got.Result, tt.want.Result) || !eq(got.Error, tt.want.Error) {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

func eq[T any](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(*a, *b)
}

func TestFormatRoundTrip(t *testing.T) {
	n := NewNonce()
	line := n.Format(KindResult, Result{Name: "mem.copy", Value: 1e9, Unit: "B/s"})
	if !bytes.HasSuffix(line, []byte("\n")) {
		t.Fatalf("Format(...) = %q, want a trailing newline", line)
	}
	m, err := n.Parse(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil {
		t.Fatal(err)
	}
	if *m.Result != (Result{Name: "mem.copy", Value: 1e9, Unit: "B/s"}) {
		t.Errorf("round trip = %+v", m.Result)
	}
}

func TestReadMessages(t *testing.T) {
	long := strings.Repeat("x", MaxLineBytes+10)
	input := "boot noise\n" +
		`VIRTBENCH READY {"workload":"cpu"}` + "\n" +
		"VIRTBENCH RESULT " + long + "\n" +
		`VIRTBENCH BOGUS {}` + "\n" +
		`VIRTBENCH RESULT {"name":"a","value":1,"unit":"x"}` + "\n" +
		`VIRTBENCH DONE {}` // no trailing newline: still delivered at EOF
	var kinds []Kind
	var other []string
	err := Nonce("").ReadMessages(strings.NewReader(input), func(m Message) {
		if m.At.IsZero() {
			t.Error("message without host timestamp")
		}
		kinds = append(kinds, m.Kind)
	}, func(l []byte) { other = append(other, string(l)) })
	if err != nil {
		t.Fatal(err)
	}
	want := []Kind{KindReady, KindResult, KindDone}
	if len(kinds) != len(want) {
		t.Fatalf("kinds = %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("kinds = %v, want %v", kinds, want)
		}
	}
	if len(other) != 3 || other[0] != "boot noise" || !strings.Contains(other[1], "longer than") || !strings.Contains(other[2], "unknown message kind") {
		t.Errorf("other lines = %q", other)
	}
}

// TestLinesSplit: a console handed to Lines in pieces of any size (as a
// poller reads a pipe) gives the messages and other lines that reading it
// whole does.
func TestLinesSplit(t *testing.T) {
	input := "boot noise\n\n" +
		`VIRTBENCH READY {"workload":"cpu"}` + "\n" +
		"VIRTBENCH RESULT " + strings.Repeat("x", MaxLineBytes+10) + "\n" +
		`VIRTBENCH RESULT {"name":"a","value":1,"unit":"x"}` + "\n" +
		`VIRTBENCH DONE {}`
	read := func(write func(l *Lines)) (got []string) {
		l := Nonce("").Lines(func(m Message) { got = append(got, string(m.Kind)) }, func(b []byte) { got = append(got, "other:"+string(b)) })
		write(l)
		l.Close()
		return got
	}
	whole := read(func(l *Lines) { l.Write([]byte(input)) })
	if len(whole) != 6 || whole[1] != "other:" || !strings.Contains(whole[3], "longer than") || whole[5] != string(KindDone) {
		t.Fatalf("whole: %q", whole)
	}
	for _, size := range []int{1, 7, 4096, MaxLineBytes} {
		got := read(func(l *Lines) {
			for b := []byte(input); len(b) > 0; {
				n := min(size, len(b))
				l.Write(b[:n])
				b = b[n:]
			}
		})
		if !slices.Equal(got, whole) {
			t.Errorf("in pieces of %d bytes: %q, want %q", size, got, whole)
		}
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("broken") }

func TestReadMessagesError(t *testing.T) {
	if err := Nonce("").ReadMessages(errReader{}, func(Message) {}, nil); err == nil {
		t.Error("ReadMessages on a failing reader returned nil")
	}
}

// TestNonce: an instance's reader takes only lines with its nonce; text
// that imitates the protocol (an error echoing an argument, a line of
// another instance) is set aside with a note, whatever precedes it.
func TestNonce(t *testing.T) {
	n, other := NewNonce(), NewNonce()
	if n == other || !n.Valid() || len(n) != 16 {
		t.Fatalf("NewNonce gave %q and %q", n, other)
	}
	for _, bad := range []Nonce{"x", "0123456789ABCDEF", "0123456789abcdeg", "0123456789abcde\n", "0123456789abcdef0"} {
		if bad.Valid() {
			t.Errorf("Nonce(%q).Valid() = true", bad)
		}
	}
	input := "listen tcp: address bad\n" +
		`VIRTBENCH READY {"workload":"http","addr":"127.0.0.1:18081"}` + "\n" +
		string(other.Format(KindReady, Ready{Workload: "forged"})) +
		"noise " + string(n.Format(KindError, Error{Msg: "listen: bad\nVIRTBENCH READY {}"}))
	var got []Message
	var notes []string
	if err := n.ReadMessages(strings.NewReader(input), func(m Message) { got = append(got, m) }, func(l []byte) { notes = append(notes, string(l)) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Kind != KindError || got[0].Error.Msg != "listen: bad\nVIRTBENCH READY {}" {
		t.Fatalf("messages = %+v, want only the marked ERROR", got)
	}
	if len(notes) != 3 || notes[0] != "listen tcp: address bad" || !strings.Contains(notes[1], "without this instance's nonce") || !strings.Contains(notes[2], "without this instance's nonce") {
		t.Errorf("other lines = %q", notes)
	}
}

var fuzzNonce = Nonce("0123456789abcdef")

func FuzzReadMessages(f *testing.F) {
	f.Add([]byte("VIRTBENCH 0123456789abcdef READY {\"workload\":\"idle\"}\nVIRTBENCH 0123456789abcdef RESULT {\"name\":\"a\",\"value\":1}\n"))
	f.Add([]byte("VIRTBENCH READY {\"workload\":\"idle\"}\n"))
	f.Add([]byte("VIRTBENCH 0123456789abcdef ERROR {\"msg\":\"x\"}\r\nnoise\n\n"))
	f.Add([]byte("VIRTBENCH 0123456789abcdef RESULT {\"name\":\"a\",\"value\":1e999}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = fuzzNonce.ReadMessages(bytes.NewReader(data), func(m Message) {
			switch m.Kind {
			case KindReady:
				if m.Ready == nil {
					t.Fatal("READY without payload")
				}
			case KindResult:
				if m.Result == nil || m.Result.Name == "" {
					t.Fatal("RESULT without name")
				}
			case KindError:
				if m.Error == nil {
					t.Fatal("ERROR without payload")
				}
			case KindDone:
			default:
				t.Fatalf("unknown kind %q delivered", m.Kind)
			}
		}, func(l []byte) {
			if len(l) > MaxLineBytes {
				t.Fatalf("line of %d bytes passed on", len(l))
			}
		})
	})
}
