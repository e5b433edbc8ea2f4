package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"virtbench/bench"
	"virtbench/drivers"
	"virtbench/drivers/state"
	"virtbench/internal/didyoumean"
	"virtbench/internal/results"
	"virtbench/reports"
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

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) (code int, err error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	driversFlag := fs.String("drivers", "", "comma-separated variants of the scenario, or drivers with their defaults, to run instead of the scenario's")
	workloadsFlag := fs.String("workloads", "", "comma-separated workloads to run instead of the scenario's")
	reps := fs.Int("reps", 0, "measured repetitions per trial (default: the scenario's)")
	warmup := fs.Int("warmup", 0, "warmup repetitions per trial, recorded but not summarised (default: the scenario's)")
	maxDuration := fs.Duration("max-duration", 0, "refuse a plan estimated to take longer than this (default: the scenario's max_duration, 8h unless it says)")
	out := fs.String("out", "", "run directory, new or empty (default results/TIMESTAMP-SCENARIO)")
	trust := fs.Bool("trust-scenario", false, "let the scenario file name host programs and files (qemu.binary, qemu.kernel, fileio -dir, probe -remove): virtbench runs or touches them as this user, usually root")
	concurrent := fs.Bool("concurrent", false, "run even while another virtbench run is going on (both runs' host-wide figures are then labelled as shared)")
	agent := fs.String("agent", defaultAgent(), "path of the virtbench-guest binary")
	plan := hostFlags(fs)
	cpuProfile := fs.String("cpuprofile", "", "write virtbench's own CPU profile to `FILE` (go tool pprof)")
	memProfile := fs.String("memprofile", "", "write virtbench's own memory profile (allocations and heap in use) to `FILE` at the end of the run")
	imageFlag := fs.String("image", "", "image profile for every driver with an image option (container, qemu) whose variant does not set one: minimal or debian (a debootstrapped Debian; the VM boots systemd)")
	sets := map[string]string{}
	fs.Func("set", "option DRIVER.NAME=VALUE for every variant of a driver that does not set it, e.g. qemu.accel=tcg, or VARIANT.NAME=VALUE for one variant (repeatable; virtbench list shows the options)", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || !strings.Contains(k, ".") {
			return fmt.Errorf("want DRIVER.NAME=VALUE, got %q", v)
		}
		sets[k] = val
		return nil
	})
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: virtbench run [SCENARIO|FILE] [flags]\n\nRuns a built-in scenario (default quick) or a scenario file. Flags:")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitUsage, err
	}
	if len(pos) > 1 {
		return exitUsage, usagef("one scenario at a time, got %q", pos)
	}
	name := "quick"
	if len(pos) == 1 {
		name = pos[0]
	}
	sc, err := scenarios.Open(name)
	if err != nil {
		return exitUsage, usageError{err}
	}
	if err := sc.HostPaths(); err != nil && !*trust {
		return exitUsage, usagef("%v\nthe scenario file names host programs or files, which would run or be touched with virtbench's privileges: set them on the command line (--set DRIVER.NAME=VALUE), or pass --trust-scenario if you trust the file", err)
	}
	required := map[string]bool{}
	if *driversFlag != "" {
		vs, err := selectVariants(sc, splitList(*driversFlag))
		if err != nil {
			return exitUsage, err
		}
		sc.Drivers = vs
		for _, v := range vs {
			required[v.Name] = true
		}
	}
	if *workloadsFlag != "" {
		byName := map[string]scenarios.Workload{}
		for _, w := range sc.Workloads {
			byName[w.Name] = w
		}
		sc.Workloads = nil
		for _, n := range splitList(*workloadsFlag) {
			w, ok := byName[n]
			if !ok {
				w = scenarios.Workload{Name: n}
			}
			sc.Workloads = append(sc.Workloads, w)
		}
	}
	if *reps != 0 {
		sc.Reps = *reps
	}
	if *imageFlag != "" {
		for _, info := range drivers.Drivers() {
			if _, ok := info.Option("image"); ok {
				sc.Options[info.Name+".image"] = *imageFlag
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(sets)) {
		if err := applySet(sc, k, sets[k], stderr); err != nil {
			return exitUsage, err
		}
	}
	if set(fs, "warmup") {
		if *warmup < 0 {
			return exitUsage, usagef("--warmup %d: want 0 or more", *warmup)
		}
		sc.Warmup = *warmup
	}
	if *maxDuration != 0 {
		sc.MaxDuration = *maxDuration
	}
	if err := sc.Validate(); err != nil {
		return exitUsage, usageError{err}
	}
	if err := bench.CheckFit(sc, bench.HostLimitsNow()); err != nil {
		return exitUsage, usageError{err}
	}
	if err := bench.CheckPlan(sc, runtime.NumCPU()); err != nil {
		return exitUsage, usageError{err}
	}
	stopProfiles, err := startProfiles(*cpuProfile, *memProfile)
	if err != nil {
		return exitUsage, usageError{err}
	}
	defer func() {
		if perr := stopProfiles(); perr != nil {
			if code == exitOK {
				code = exitFailures
			}
			err = errors.Join(err, perr)
		}
	}()

	dir := *out
	if dir == "" {
		dir = filepath.Join("results", time.Now().Format("20060102-150405")+"-"+sc.Name)
	}
	// Check for other runs and claim a state directory in one step.
	unlock, err := state.LockRoot(stateRoot())
	if err != nil {
		return exitFailures, err
	}
	others, err := activeRuns()
	if err != nil {
		unlock()
		return exitFailures, err
	}
	if len(others) > 0 && !*concurrent {
		unlock()
		return exitUsage, usagef("another virtbench run is going on (%s): wait for it, or pass --concurrent (the host-wide figures of both runs, MemAvailable drop and host CPU, would then include the other's instances)", describeRuns(others))
	}
	store, err := results.CreateStore(dir)
	if err != nil {
		unlock()
		return exitUsage, usageError{err}
	}
	warnOrphans(stderr)
	stateDir, err := makeStateDir()
	if err != nil {
		unlock()
		store.Close()
		return exitFailures, err
	}
	// The state directory goes when the run ends, unless its end could
	// not be recorded: then virtbench clean finds it and marks the run.
	keepState := false
	defer func() {
		if !keepState {
			os.RemoveAll(stateDir)
		}
	}()
	err = state.Claim(stateDir, dir)
	unlock()
	if err != nil {
		store.Close()
		return exitFailures, err
	}

	var used []string
	for _, v := range sc.Drivers {
		used = append(used, v.Driver)
	}
	prov := bench.Collect(ctx, used)
	prov.Scenario, prov.ScenarioHash, prov.ScenarioFile = sc.Name, sc.Hash, sc.Source
	if fs.NFlag() > 0 {
		prov.ScenarioFile += " (with command-line flags: " + strings.Join(args, " ") + ")"
	}
	prov.DiskFreeBytes = bench.DiskFree(ctx, stateDir)
	status := results.Status{Scenario: sc.Name, Description: sc.Description, Args: os.Args[1:], PID: os.Getpid(), Started: time.Now().UTC(), State: results.StateRunning}
	for _, o := range others {
		status.SharedWith = append(status.SharedWith, describeRun(o))
		_ = state.NoteConcurrent(o.Dir, dir)
	}
	if err := results.WriteJSON(dir, results.EnvFile, prov); err != nil {
		store.Close()
		return exitFailures, err
	}
	if err := results.WriteJSON(dir, results.StatusFile, status); err != nil {
		store.Close()
		return exitFailures, err
	}
	fmt.Fprintf(stderr, "virtbench: running %s (%s) into %s\n", sc.Name, sc.Description, dir)
	if est := bench.EstimateDuration(sc, runtime.NumCPU()); est > 0 {
		fmt.Fprintf(stderr, "virtbench: the plan should take about %v (by the drivers' typical trial times; images built on first use take longer)\n", est.Round(time.Second))
	}

	// The first sample that cannot be written stops the run as a signal
	// would: what follows could not be kept.
	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	sink := func(s results.Sample) error {
		err := store.Add(s)
		if err != nil {
			stopRun(err)
		}
		return err
	}
	r := &bench.Runner{
		Scenario: sc,
		Env:      drivers.Env{Agent: *agent, StateDir: stateDir, CacheDir: cacheDir()},
		Sink:     sink,
		Progress: newProgress(stderr),
		Required: required,
	}
	if kill, ok := ctx.Value(killKey{}).(<-chan struct{}); ok {
		r.Kill = kill
	}
	outcome, runErr := r.Run(runCtx)
	closeErr := store.Close()
	if cause := context.Cause(runCtx); cause != nil && !errors.Is(cause, context.Canceled) {
		runErr = cause // a failed sample write, not the user
	}

	status.Finished, status.Outcome = time.Now().UTC(), outcome
	for _, o := range state.ConcurrentNotes(stateDir) {
		status.SharedWith = append(status.SharedWith, describeRun(state.Orphan{Owner: o}))
	}
	code = exitOK
	switch {
	case errors.Is(runErr, context.Canceled):
		status.State, status.Reason, code = results.StateInterrupted, "interrupted by a signal", exitInterrupted
	case runErr != nil:
		status.State, status.Reason, code = results.StateFailed, runErr.Error(), exitFailures
	case outcome.Trials == 0 && len(outcome.Density) == 0:
		status.State, status.Reason, code = results.StateFailed, "nothing was measured: no trial ran (each skipped variant or trial says why under outcome.skipped)", exitFailures
	case outcome.FailureCount > 0:
		status.State, status.Reason, code = results.StateCompleted, fmt.Sprintf("%d failed measurements", outcome.FailureCount), exitFailures
	default:
		status.State = results.StateCompleted
	}
	status.Output = outputNote(stdout, stderr)
	if err := errors.Join(closeErr, results.WriteJSON(dir, results.StatusFile, status)); err != nil {
		keepState = true
		return exitFailures, errors.Join(runErr, fmt.Errorf("recording the end of the run: %w (virtbench clean will mark it)", err))
	}
	// The report is built from the run directory, as virtbench report
	// builds it: one path from the samples on disk to every output.
	run, err := reports.Load(dir)
	if err != nil {
		return exitFailures, errors.Join(runErr, err)
	}
	run.Plan = plan()
	analysis := reports.Analyze(run)
	report, err := reports.WriteAll(run, analysis)
	if err != nil {
		return exitFailures, errors.Join(runErr, err)
	}
	if ctx.Err() != nil && code != exitInterrupted {
		// Interrupted while the report was written: say so.
		status.State, status.Reason, code = results.StateInterrupted, "interrupted by a signal while the report was written", exitInterrupted
		if err := results.WriteJSON(dir, results.StatusFile, status); err != nil {
			return code, err
		}
	}
	for _, w := range run.Warnings {
		fmt.Fprintf(stderr, "virtbench run: warning: %s\n", w)
	}
	fmt.Fprintln(stdout)
	if err := reports.WriteTerminal(stdout, analysis); err != nil {
		return exitFailures, err
	}
	for k, v := range outcome.Density {
		fmt.Fprintf(stdout, "density %s: %s\n", k, v)
	}
	for d, why := range outcome.Skipped {
		fmt.Fprintf(stdout, "not run: %s: %s\n", d, why)
	}
	for _, f := range outcome.Failures {
		fmt.Fprintf(stdout, "failed: %s\n", f)
	}
	if more := outcome.FailureCount - len(outcome.Failures); more > 0 {
		fmt.Fprintf(stdout, "failed: %d more (every failure is a sample in %s)\n", more, results.SamplesFile)
	}
	for _, o := range status.SharedWith {
		fmt.Fprintf(stdout, "shared the host with: %s\n", o)
	}
	fmt.Fprintf(stdout, "run directory: %s\nreport: %s\n", dir, report)
	if code == exitInterrupted {
		return code, context.Canceled
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return code, runErr
	}
	return code, nil
}

// set reports whether the flag name was given on the command line.
func set(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// activeRuns returns the other virtbench runs going on now (not list or
// env, which claim a state directory without a run directory).
func activeRuns() ([]state.Orphan, error) {
	all, err := state.Active(stateRoot())
	var runs []state.Orphan
	for _, o := range all {
		if o.Owner.RunDir != "" {
			runs = append(runs, o)
		}
	}
	return runs, err
}

func describeRun(o state.Orphan) string {
	return fmt.Sprintf("PID %d writing %s", o.Owner.Pid, o.Owner.RunDir)
}

func describeRuns(runs []state.Orphan) string {
	var ds []string
	for _, o := range runs {
		ds = append(ds, describeRun(o))
	}
	return strings.Join(ds, "; ")
}

// hostFlags defines --host-mem and --host-cpus and returns a function that
// gives the planned host they describe, or nil when neither was given.
func hostFlags(fs *flag.FlagSet) func() *reports.Host {
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
	return func() *reports.Host {
		if memBytes == 0 && *cpus == 0 {
			return nil
		}
		h := &reports.Host{Name: "planned", MemoryBytes: memBytes, CPUs: *cpus}
		if h.MemoryBytes == 0 {
			h.MemoryBytes, _ = bench.HostMemTotal(context.Background())
		}
		if h.CPUs == 0 {
			h.CPUs = runtime.NumCPU()
		}
		h.Name = fmt.Sprintf("planned (%s, %d CPUs)", reports.FormatValue(float64(h.MemoryBytes), "B"), h.CPUs)
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
// is one.
func newProgress(w io.Writer) io.Writer {
	f, ok := w.(interface{ Fd() uintptr })
	return &progress{w: w, tty: ok && term.IsTerminal(int(f.Fd()))}
}

func (p *progress) Write(b []byte) (int, error) {
	if !p.tty {
		return p.w.Write(b)
	}
	line := strings.TrimRight(string(b), "\n")
	if strings.HasPrefix(line, "[") {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintf(p.w, "\r\033[K%s\n", line)
	}
	return len(b), nil
}
