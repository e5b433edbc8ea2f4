package agentproc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"virtbench/internal/required"

	"virtbench/drivers"
)

// TestErrorCarriesStderr checks that the error of a process that exits
// before READY ends with its last words on stderr, even when stdout closed
// long before stderr was read to the end.
func TestErrorCarriesStderr(t *testing.T) {
	// stdout closes first; then 3000 lines of stderr, the last one the reason.
	script := `exec 1>&-; i=0; while [ $i -lt 3000 ]; do echo "noise $i" >&2; i=$((i+1)); done; echo "the real reason" >&2; exit 3`
	for range 5 {
		p, err := Start(exec.Command("sh", "-c", script), time.Now(), "")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err = p.Ready(ctx)
		cancel()
		if !errors.Is(err, drivers.ErrExited) || !strings.HasSuffix(err.Error(), "the real reason") {
			t.Fatalf("Ready = %v; want ErrExited ending with the last line of stderr", err)
		}
		select {
		case <-p.OutputDone():
		default:
			t.Error("Ready returned before every stream reached EOF")
		}
	}
}

// TestLineHookSeesEveryLine checks that the hook sees a line however much
// output follows it, on stdout and on stderr.
func TestLineHookSeesEveryLine(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	hook := func(line []byte) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(string(line), "headline") {
			seen = append(seen, string(line))
		}
	}
	script := `echo "headline out: x"; echo "headline err: y" >&2; i=0; while [ $i -lt 500 ]; do echo "trace $i"; i=$((i+1)); done; exit 1`
	p, err := Start(exec.Command("sh", "-c", script), time.Now(), "", WithLineHook(hook))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// stdout's headline is followed by 500 lines on stdout: it is no
	// longer in the error's 2 KiB tail. (Where stderr's line falls among
	// them depends on which reader ran last.)
	if _, err := p.Ready(ctx); err == nil || strings.Contains(err.Error(), "headline out") {
		t.Fatalf("Ready = %v; want an exit error whose 2 KiB tail no longer holds stdout's headline", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, "|") != "headline out: x|headline err: y" && strings.Join(seen, "|") != "headline err: y|headline out: x" {
		t.Errorf("hook saw %q, want both headlines", seen)
	}
}

// TestCombinedOutput checks that with one pipe for both streams the READY
// line is found among stderr's lines and stderr is kept for errors.
func TestCombinedOutput(t *testing.T) {
	script := `echo "warming up" >&2; echo 'VIRTBENCH READY {"workload":"idle"}'; echo "last words" >&2; exit 4`
	p, err := Start(exec.Command("sh", "-c", script), time.Now(), "", WithCombinedOutput())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := p.Ready(ctx)
	if err != nil || r.Guest.Workload != "idle" {
		t.Fatalf("Ready = %+v, %v; want READY for idle", r, err)
	}
	<-p.Exited()
	<-p.OutputDone()
	if tail := p.Tail(); !strings.Contains(tail, "warming up") || !strings.HasSuffix(tail, "last words") {
		t.Errorf("Tail = %q, want both stderr lines", tail)
	}
	if err := p.ExitErr(); !errors.Is(err, drivers.ErrExited) || !strings.HasSuffix(err.Error(), "exit status 4") {
		t.Errorf("ExitErr = %v, want ErrExited with exit status 4", err)
	}
}

// TestNoThreadPerProcess checks that running processes hold no OS thread
// and no goroutine each: the package's one poller reads their output and
// awaits their exits.
func TestNoThreadPerProcess(t *testing.T) {
	threads := func() int {
		entries, err := os.ReadDir("/proc/self/task")
		if err != nil {
			required.Skip(t, "procfs", "no /proc/self/task: "+err.Error()+": mount /proc")
		}
		return len(entries)
	}
	before, goroutines := threads(), runtime.NumGoroutine()
	const n = 64
	var ps []*Process
	for range n {
		p, err := Start(exec.Command("sleep", "60"), time.Now(), "", WithCombinedOutput())
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	// Every waiting goroutine has reached its wait once the thread count
	// holds still.
	during := threads()
	for settled, end := 0, time.Now().Add(10*time.Second); settled < 5 && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
		if n := threads(); n == during {
			settled++
		} else {
			settled, during = 0, n
		}
	}
	goroutinesDuring := runtime.NumGoroutine()
	for _, p := range ps {
		if err := p.Kill(); err != nil {
			t.Error(err)
		}
		<-p.Exited()
	}
	if during-before >= n/2 {
		t.Errorf("%d threads while %d processes ran, %d before: a thread per process", during, n, before)
	}
	if goroutinesDuring-goroutines >= n/2 {
		t.Errorf("%d goroutines while %d processes ran, %d before: a goroutine per process", goroutinesDuring, n, goroutines)
	}
}

// BenchmarkFootprint reports what a running process costs the harness:
// heap bytes and goroutines per process, 100 processes at a time.
func BenchmarkFootprint(b *testing.B) {
	const n = 100
	var heap, goroutines float64
	for range b.N {
		var before, during runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		g := runtime.NumGoroutine()
		var ps []*Process
		for range n {
			p, err := Start(exec.Command("sleep", "60"), time.Now(), "", WithCombinedOutput())
			if err != nil {
				b.Fatal(err)
			}
			ps = append(ps, p)
		}
		runtime.GC()
		runtime.ReadMemStats(&during)
		heap += float64(during.HeapInuse) - float64(before.HeapInuse)
		goroutines += float64(runtime.NumGoroutine() - g)
		for _, p := range ps {
			if err := p.Kill(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(heap/float64(b.N*n), "heap-B/process")
	b.ReportMetric(goroutines/float64(b.N*n), "goroutines/process")
	b.ReportMetric(0, "ns/op")
}
