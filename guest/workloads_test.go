package guest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"virtbench/internal/required"
	"virtbench/internal/tools"
)

func TestPrepareErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "no workload"},
		{[]string{"nope"}, `unknown workload "nope"`},
		{[]string{"cpu", "-ops", "0"}, "must be positive"},
		{[]string{"cpu", "-ops", "many"}, "not an integer"},
		{[]string{"cpu", "-bogus"}, "not defined: -bogus"},
		{[]string{"cpu", "extra"}, `unexpected argument "extra"`},
		{[]string{"mem", "-size", "-1"}, "must be positive"},
		{[]string{"syscall", "-time", "-1s"}, "must not be negative"},
		{[]string{"syscall", "-time", "soon"}, "not a duration"},
	}
	for _, tt := range tests {
		_, _, err := Prepare(tt.args)
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Prepare(%q) = %v, want a UsageError containing %q", tt.args, err, tt.want)
		}
	}
}

// TestSyscallTimeLimit: -time ends the loop long before -ops calls (a
// trillion would take hours) and the cost is per call actually made.
func TestSyscallTimeLimit(t *testing.T) {
	ms := runWorkload(t, "syscall", "-ops", "1000000000000", "-time", "50ms")
	var got float64
	for _, m := range ms {
		if m.Kind == KindResult && m.Result.Name == "syscall.getppid" {
			got = m.Result.Value
		}
	}
	if got <= 0 || got > 1e-3 {
		t.Errorf("syscall.getppid = %v sec/op, want a plausible cost per call", got)
	}
}

// runWorkload runs a workload to DONE and returns the protocol output.
func runWorkload(t *testing.T, args ...string) []Message {
	t.Helper()
	w, run, err := Prepare(args)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	a := NewAgent(&buf, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, a, w, run) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(safeString(a, &buf), "VIRTBENCH DONE") {
		if time.Now().After(deadline) {
			t.Fatalf("%v: no DONE; output %q", args, safeString(a, &buf))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	var ms []Message
	if err := Nonce("").ReadMessages(strings.NewReader(buf.String()), func(m Message) { ms = append(ms, m) }, nil); err != nil {
		t.Fatal(err)
	}
	return ms
}

func safeString(a *Agent, b *bytes.Buffer) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return b.String()
}

func TestWorkloadResults(t *testing.T) {
	tests := []struct {
		args  []string
		names []string
		unit  string
	}{
		{[]string{"cpu", "-ops", "10"}, []string{"cpu.sha256"}, "op/s"},
		{[]string{"mem", "-size", "1048576", "-reps", "2"}, []string{"mem.copy", "mem.triad"}, "B/s"},
		{[]string{"syscall", "-ops", "1000"}, []string{"syscall.getppid"}, "sec/op"},
		{[]string{"fileio", "-size", "1048576", "-dir", ""}, []string{"fileio.write", "fileio.read"}, "B/s"},
		{[]string{"alloc", "-size", "1048576"}, []string{"alloc.bytes"}, "B"},
	}
	for _, tt := range tests {
		t.Run(tt.args[0], func(t *testing.T) {
			args := tt.args
			for i, a := range args {
				if a == "" {
					args[i] = t.TempDir()
				}
			}
			ms := runWorkload(t, args...)
			if ms[0].Kind != KindReady || ms[0].Ready.Workload != tt.args[0] {
				t.Fatalf("first message = %+v, want READY", ms[0])
			}
			var got []string
			for _, m := range ms {
				if m.Kind == KindResult {
					got = append(got, m.Result.Name)
					if m.Result.Unit != tt.unit || m.Result.Value <= 0 {
						t.Errorf("result %+v, want a positive value in %s", m.Result, tt.unit)
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.names) {
				t.Errorf("results %v, want %v", got, tt.names)
			}
		})
	}
}

func TestHTTPServes(t *testing.T) {
	w, run, err := Prepare([]string{"http"})
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	a := NewAgent(pw, "")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, a, w, run) }()
	ready := make(chan Ready, 1)
	go Nonce("").ReadMessages(pr, func(m Message) {
		if m.Kind == KindReady {
			ready <- *m.Ready
		}
	}, nil)
	r := <-ready
	c, err := net.Dial("tcp", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 2; i++ { // keep-alive: two requests on one connection
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(httpResponse))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(buf), "HTTP/1.1 200 OK") {
			t.Fatalf("response %q", buf)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	pw.Close()
}

// TestMeasuresDeclared runs every workload that declares its measures,
// small, and checks that it reports exactly those results, in order and
// in their units: what the host knows of a result (its direction, its
// family) comes from the declaration.
func TestMeasuresDeclared(t *testing.T) {
	args := map[string][]string{
		"cpu":     {"-ops", "4"},
		"mem":     {"-size", "65536"},
		"syscall": {"-ops", "1000"},
		"fileio":  {"-size", "65536", "-dir", t.TempDir()},
		"alloc":   {"-size", "65536"},
		"fio":     {"-size", "1048576", "-runtime", "1s", "-dir", diskDir(t)},
	}
	hostTools(t)
	for _, w := range Workloads() {
		if len(w.Measures) == 0 {
			continue
		}
		a, ok := args[w.Name]
		if !ok {
			t.Errorf("%s declares measures but this test does not run it", w.Name)
			continue
		}
		var got []Measure
		for _, m := range runWorkload(t, append([]string{w.Name}, a...)...) {
			if m.Kind == KindResult {
				got = append(got, Measure{Name: m.Result.Name, Unit: m.Result.Unit})
			}
		}
		var want []Measure
		for _, m := range w.Measures {
			want = append(want, Measure{Name: m.Name, Unit: m.Unit})
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s reported %v, declares %v", w.Name, got, want)
		}
	}
}

// hostTools points the agent's tools layer (tools.DirEnv) at the host's
// own installed programs and libraries, by links: what the layer would
// hold, with the same loader invocation. A host without fio skips.
func hostTools(t *testing.T) {
	t.Helper()
	if err := tools.FIO.Check(); err != nil {
		required.Skip(t, "tools", err.Error())
	}
	prefix := t.TempDir()
	if err := os.Mkdir(filepath.Join(prefix, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(tools.FIO.Path, filepath.Join(prefix, "bin", tools.FIO.Name)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/lib/x86_64-linux-gnu", filepath.Join(prefix, "lib")); err != nil {
		t.Fatal(err)
	}
	t.Setenv(tools.DirEnv, prefix)
}

// diskDir returns a directory on a disk (/var/tmp: /tmp may be a tmpfs,
// which refuses direct I/O), removed when the test ends.
func diskDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "virtbench-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestParseFIO reads fio 3.33's JSON output of the fio workload's four
// jobs (testdata/fio.json, as fio wrote it): IOPS and latency of the
// random jobs, bandwidth of the sequential ones, in the declared order.
func TestParseFIO(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "fio.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseFIO(b)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := Lookup(FIOWorkload)
	if len(got) != len(w.Measures) {
		t.Fatalf("%d results, want %d", len(got), len(w.Measures))
	}
	for i, m := range w.Measures {
		if got[i].Name != m.Name || got[i].Unit != m.Unit || got[i].Value <= 0 {
			t.Errorf("result %d = %+v, want a positive %s in %s", i, got[i], m.Name, m.Unit)
		}
	}
	// A clock too coarse for the I/O (a guest on jiffies) times it as 0:
	// that is no latency.
	coarse := bytes.ReplaceAll(b, []byte(`"50.000000" : `), []byte(`"50.000000" : 0, "x" : `))
	got, err = ParseFIO(coarse)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range got {
		if strings.HasSuffix(v.Name, "_p50") != (v.Unmeasured != "") {
			t.Errorf("%s: unmeasured %q; want only the p50s unmeasured", v.Name, v.Unmeasured)
		}
	}
	for _, tt := range []struct{ name, out, want string }{
		{"failed job", `{"jobs": [{"jobname": "randread", "error": 22}]}`, "EINVAL"},
		{"missing job", `{"jobs": []}`, "no job randread"},
		{"not JSON", `fio: unknown option`, "JSON"},
	} {
		if _, err := ParseFIO([]byte(tt.out)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
}

// TestEveryWorkloadDeclaresDemand: each workload says what its flags ask
// of the host, so that the guards see it (the repro: nginx -size 4 GiB
// passed as an 8 MiB instance, and the agent allocated the 4 GiB).
func TestEveryWorkloadDeclaresDemand(t *testing.T) {
	for _, w := range Workloads() {
		if w.Demand == nil {
			t.Errorf("workload %s declares no Demand (NoDemand where its flags ask nothing)", w.Name)
		}
	}
	tests := []struct {
		args []string
		want Demand
	}{
		{[]string{NginxWorkload, "-size", "4294967296"}, Demand{MemoryBytes: 4 << 30, DiskBytes: 4 << 30}},
		{[]string{"alloc", "-size", "1048576"}, Demand{MemoryBytes: 1 << 20}},
		{[]string{IdleWorkload}, Demand{}},
	}
	for _, tt := range tests {
		if got, err := DemandOf(tt.args); err != nil || got != tt.want {
			t.Errorf("DemandOf(%q) = %+v, %v; want %+v", tt.args, got, err, tt.want)
		}
	}
}
