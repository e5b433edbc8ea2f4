// Command virtbench runs the same workload as a plain process, as a Linux
// container and as a QEMU virtual machine, measures startup, memory and
// workload speed, and reports the comparison.
//
// Usage:
//
//	virtbench run [SCENARIO|FILE] [--drivers a,b] [--workloads x,y] [--reps N] [--warmup N] [--out DIR]
//	virtbench list
//	virtbench env [--json]
//	virtbench report RUN_DIR|FLEET_DIR [--format html|md|csv|json|text]
//	virtbench compare BASE_RUN RUN [RUN...] [--fail-on-regression PCT]
//	virtbench clean
//
// SCENARIO is a built-in scenario (virtbench list shows them; the default
// is quick) or the path of a YAML scenario file (see scenarios/README.md).
// A run writes its directory (default results/TIMESTAMP-SCENARIO): the raw
// samples.jsonl, env.json, run.json, summary.json, results.txt (Go
// benchmark format, for benchstat), results.csv, results.md, charts and
// report.html.
//
// Exit status: 0 ok, 1 the run had failures, 2 usage or input error,
// 130 interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"

	_ "virtbench/drivers/all"
	"virtbench/internal/loadgen"
	"virtbench/internal/textsafe"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailures    = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// usageError is a bad command line or input file: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error)
}

func commands() []command {
	return []command{
		{"run", "run a scenario and write a run directory", cmdRun},
		{"list", "list drivers (with availability), scenarios and workloads", cmdList},
		{"env", "print the host's provenance", cmdEnv},
		{"report", "regenerate a run directory's summaries, tables, charts and report.html from samples.jsonl; of a fleet directory (a run directory per host), one fleet.html over its hosts", cmdReport},
		{"compare", "compare runs metric by metric (Mann-Whitney U), optionally failing on regressions", cmdCompare},
		{"clean", "remove what killed virtbench runs left behind (processes, mounts, cgroups, state)", cmdClean},
		{"example-image", "write the example service's image (nginx from the host's packages) as a docker-archive", cmdExampleImage},
		{"unpack", "unpack a run directory's archive a campaign fetched from a host, safely and within limits", cmdUnpack},
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == loadgen.ChildArg {
		// A load generator process of a run's (bench's sendLoad).
		if err := loadgen.Child(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	ctx, kill, stop := signals()
	code := run(context.WithValue(ctx, killKey{}, kill), os.Args[1:], &pipeWriter{w: os.Stdout, name: "stdout"}, &pipeWriter{w: os.Stderr, name: "stderr"})
	stop()
	os.Exit(code)
}

// pipeWriter writes to a terminal stream until its reader goes away (a
// closed pipe: `virtbench run … | head -2`); from then on it drops what is
// written, so that losing the output does not stop a run.
type pipeWriter struct {
	w    io.Writer
	name string

	mu     sync.Mutex
	closed error
}

func (p *pipeWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed != nil {
		return len(b), nil
	}
	n, err := p.w.Write(b)
	if errors.Is(err, syscall.EPIPE) {
		p.closed = err
		return len(b), nil
	}
	return n, err
}

// Fd returns the descriptor of the stream written to, so that a caller
// can ask whether it is a terminal; ^uintptr(0) when it is not a file.
func (p *pipeWriter) Fd() uintptr {
	if f, ok := p.w.(*os.File); ok {
		return f.Fd()
	}
	return ^uintptr(0)
}

// Closed says whether and how the stream was closed early.
func (p *pipeWriter) Closed() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed == nil {
		return ""
	}
	return p.name + " was closed early (" + p.closed.Error() + "); output to it stopped, the run went on"
}

// outputNote says which of the writers were closed early, for run.json.
func outputNote(ws ...io.Writer) string {
	var notes []string
	for _, w := range ws {
		if c, ok := w.(interface{ Closed() string }); ok && c.Closed() != "" {
			notes = append(notes, c.Closed())
		}
	}
	return strings.Join(notes, "; ")
}

// killKey carries, in a command's context, the channel closed by a second
// interrupt.
type killKey struct{}

// signals returns a context cancelled by the first terminating signal
// (SIGINT, SIGTERM, SIGHUP, SIGQUIT: stop gracefully, keep what was
// measured) and a channel closed by the second (stop at once, still
// cleaning up); a third exits at once with status 130, whatever is
// running (the instances die with virtbench: their parent-death signal).
// SIGQUIT first writes every goroutine's stack to stderr, as Go's own
// handler would, but then stops like the others instead of leaving the
// run's instances for virtbench clean. SIGPIPE is caught too, so that a
// closed stdout or stderr makes writes fail (see pipeWriter) instead of
// killing virtbench with its instances running.
func signals() (context.Context, <-chan struct{}, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	kill := make(chan struct{})
	ch := make(chan os.Signal, 3)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	done := make(chan struct{})
	next := func() bool {
		select {
		case sig := <-ch:
			if sig == syscall.SIGQUIT {
				_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
			}
			return true
		case <-done:
			return false
		}
	}
	go func() {
		if !next() {
			return
		}
		fmt.Fprintln(os.Stderr, "\nvirtbench: stopping every instance and saving the samples (interrupt again to kill them at once)")
		cancel()
		if !next() {
			return
		}
		fmt.Fprintln(os.Stderr, "virtbench: killing every instance (interrupt again to exit at once)")
		close(kill)
		if !next() {
			return
		}
		fmt.Fprintln(os.Stderr, "virtbench: exiting at once; virtbench clean removes what is left")
		os.Exit(exitInterrupted)
	}()
	return ctx, kill, func() {
		signal.Stop(ch)
		close(done)
		cancel()
	}
}

// run runs the command args name. What it prints passes through
// textsafe.Writer: names and messages can come from a run directory or a
// campaign's host, and no control sequence of theirs reaches a terminal.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	stdout, stderr = textsafe.NewWriter(stdout), textsafe.NewWriter(stderr)
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		code, err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, new(usageError)):
			fmt.Fprintf(stderr, "virtbench %s: %v\n", c.name, err)
			return exitUsage
		case errors.Is(err, context.Canceled):
			fmt.Fprintf(stderr, "virtbench %s: interrupted\n", c.name)
			return exitInterrupted
		case err != nil:
			fmt.Fprintf(stderr, "virtbench %s: %v\n", c.name, err)
			if code == exitOK {
				code = exitFailures
			}
		}
		return code
	}
	fmt.Fprintf(stderr, "virtbench: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: virtbench COMMAND [arguments]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nvirtbench COMMAND -h shows the command's flags.")
}

// parseInterleaved parses flags that may come before or after positional
// arguments, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
