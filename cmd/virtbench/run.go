package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/term"

	"virtbench/analysis"
	"virtbench/bench"
	"virtbench/drivers"
	"virtbench/drivers/state"
	"virtbench/internal/didyoumean"
	"virtbench/internal/textsafe"
	"virtbench/internal/units"
	"virtbench/scenarios"
)

// selectVariants returns the variants named: the scenario's own, or a
// registered driver with its defaults.
func selectVariants(sc *scenarios.Scenario, names []string) ([]scenarios.Variant, error) {
	var out []scenarios.Variant
	for _, n := range names {
		if v, ok := sc.Variant(n); ok {
			out = append(out, v)
			continue
		}
		if _, err := drivers.Lookup(n); err == nil {
			out = append(out, scenarios.Variant{Name: n, Driver: n})
			continue
		}
		known := sc.VariantNames()
		for _, info := range drivers.Drivers() {
			if !slices.Contains(known, info.Name) {
				known = append(known, info.Name)
			}
		}
		return nil, usagef("--drivers: %q is neither a variant of scenario %s nor a driver%s (have %s)", n, sc.Name, didyoumean.Suggest(n, known), strings.Join(known, ", "))
	}
	return out, nil
}

// applySet applies --set KEY=VALUE: DRIVER.NAME sets the option for every
// variant of the driver that does not set it itself; VARIANT.NAME sets it
// for that variant of the scenario; host.NAME sets a host setting for
// every variant that does not set it.
func applySet(sc *scenarios.Scenario, key, value string, stderr io.Writer) error {
	prefix, name, _ := strings.Cut(key, ".")
	if prefix == scenarios.HostPrefix {
		if err := scenarios.Host.CheckOptions(map[string]string{name: value}); err != nil {
			return usagef("--set %s=%s: %v", key, value, err)
		}
		sc.Options[key] = value
		return nil
	}
	if info, err := drivers.Lookup(prefix); err == nil {
		if err := info.CheckOptions(map[string]string{name: value}); err != nil {
			return usagef("--set %s=%s: %v", key, value, err)
		}
		if !slices.ContainsFunc(sc.Drivers, func(v scenarios.Variant) bool { return v.Driver == prefix }) {
			fmt.Fprintf(stderr, "virtbench run: warning: --set %s=%s is unused: driver %s is not in this run (%s)\n", key, value, prefix, strings.Join(sc.VariantNames(), ", "))
		}
		sc.Options[key] = value
		return nil
	}
	for i, v := range sc.Drivers {
		if v.Name != prefix {
			continue
		}
		info, _ := drivers.Lookup(v.Driver)
		if err := info.CheckOptions(map[string]string{name: value}); err != nil {
			return usagef("--set %s=%s: %v", key, value, err)
		}
		opts := maps.Clone(v.Options)
		if opts == nil {
			opts = map[string]string{}
		}
		opts[name] = value
		sc.Drivers[i].Options = opts
		return nil
	}
	return usagef("--set %s: %q is neither a driver nor a variant of scenario %s (have %s)", key, prefix, sc.Name, strings.Join(sc.VariantNames(), ", "))
}

// set reports whether the flag name was given on the command line.
func set(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

func describeRun(o state.Owner) string {
	return fmt.Sprintf("PID %d writing %s", o.Pid, o.RunDir)
}

func describeRuns(runs []state.Owner) string {
	var ds []string
	for _, o := range runs {
		ds = append(ds, describeRun(o))
	}
	return strings.Join(ds, "; ")
}

// hostFlags defines --host-mem and --host-cpus and returns a function that
// gives the planned host they describe, or nil when neither was given.
func hostFlags(fs *flag.FlagSet) func() *analysis.HostSize {
	var memBytes int64
	fs.Func("host-mem", "memory of a host to estimate capacity for, e.g. 64GiB", func(v string) error {
		n, err := scenarios.ParseSize(v)
		if err != nil || n == 0 {
			return fmt.Errorf("want a size such as 64GiB, got %q", v)
		}
		memBytes = n
		return nil
	})
	cpus := fs.Int("host-cpus", 0, "CPUs of that host (default: this host's)")
	return func() *analysis.HostSize {
		if memBytes == 0 && *cpus == 0 {
			return nil
		}
		h := &analysis.HostSize{Name: "planned", MemoryBytes: memBytes, CPUs: *cpus}
		if h.MemoryBytes == 0 {
			h.MemoryBytes, _ = bench.HostMemTotal(context.Background())
		}
		if h.CPUs == 0 {
			h.CPUs = runtime.NumCPU()
		}
		h.Name = fmt.Sprintf("planned (%s, %d CPUs)", units.Format(float64(h.MemoryBytes), "B"), h.CPUs)
		return h
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// defaultAgent is virtbench-guest beside the virtbench executable.
func defaultAgent() string {
	exe, err := os.Executable()
	if err != nil {
		return "virtbench-guest"
	}
	return filepath.Join(filepath.Dir(exe), "virtbench-guest")
}

// StateRoot holds the state directories of runs when virtbench runs as
// root. It is on disk, not tmpfs, because containers' writable layers live
// there and the fileio workload must measure a disk.
const StateRoot = "/var/lib/virtbench/state"

// makeStateDir creates the run's state directory under stateRoot. It is
// mode 0711: not listable, but traversable by a user-namespaced
// container's mapped root; each instance directory inside is 0700 unless
// that container needs it open.
func makeStateDir() (string, error) {
	base := stateRoot()
	if err := os.MkdirAll(base, 0o711); err != nil {
		return "", fmt.Errorf("state directory: %w", err)
	}
	dir, err := os.MkdirTemp(base, "run-")
	if err != nil {
		return "", fmt.Errorf("state directory: %w", err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("state directory: %w", err)
	}
	return dir, nil
}

// scratchStateDir makes and claims a state directory for drivers that are
// only checked (virtbench list, run --check); release removes it.
func scratchStateDir() (string, func(), error) {
	dir, err := makeStateDir()
	if err != nil {
		return "", nil, err
	}
	if err := state.Claim(dir, ""); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// StateEnv overrides where run state directories live (tests use it to
// keep their runs apart from the host's).
const StateEnv = "VIRTBENCH_STATE"

// stateRoot is where run state directories live: $VIRTBENCH_STATE, else
// StateRoot when root, else a directory of the user's in the temp
// directory.
func stateRoot() string {
	if d := os.Getenv(StateEnv); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return StateRoot
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("virtbench-state-%d", os.Geteuid()))
}

// warnOrphans tells the user about state left by killed runs.
func warnOrphans(w io.Writer) {
	orphans, err := state.Orphans(stateRoot())
	if err != nil || len(orphans) == 0 {
		return
	}
	fmt.Fprintf(w, "virtbench: %d earlier run(s) were killed and left state behind (e.g. %s): run virtbench clean\n", len(orphans), orphans[0].Dir)
}

// cacheDir holds images reused across runs: $VIRTBENCH_CACHE, else
// /var/cache/virtbench for root, else the user cache directory.
func cacheDir() string {
	if d := os.Getenv("VIRTBENCH_CACHE"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/cache/virtbench"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "virtbench")
	}
	return filepath.Join(os.TempDir(), "virtbench-cache")
}

// progress writes runner lines: on a terminal each trial line replaces the
// previous one; elsewhere every line is kept.
type progress struct {
	w   io.Writer
	tty bool
}

// newProgress returns the progress writer for w: a terminal when w (an
// *os.File, or the pipeWriter main wraps stderr in) has a descriptor that
// is one. On a terminal it writes its own control sequences to what a
// textsafe.Writer w wraps, and its lines made safe.
func newProgress(w io.Writer) io.Writer {
	f, ok := w.(interface{ Fd() uintptr })
	p := &progress{w: w, tty: ok && term.IsTerminal(int(f.Fd()))}
	if u, ok := w.(interface{ Unwrap() io.Writer }); ok && p.tty {
		p.w = u.Unwrap()
	}
	return p
}

func (p *progress) Write(b []byte) (int, error) {
	if !p.tty {
		return p.w.Write(b)
	}
	line := textsafe.Text(strings.TrimRight(string(b), "\n"))
	if strings.HasPrefix(line, "[") {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintf(p.w, "\r\033[K%s\n", line)
	}
	return len(b), nil
}
