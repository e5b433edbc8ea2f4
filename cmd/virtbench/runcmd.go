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
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"virtbench/analysis"
	"virtbench/bench"
	"virtbench/drivers"
	"virtbench/drivers/state"
	"virtbench/internal/loadgen"
	"virtbench/internal/results"
	"virtbench/reports"
	"virtbench/scenarios"
)

// cmdRun is virtbench run. Its steps, in order, each named after what it
// does: parse the flags, load and check the plan (nothing has started
// when it fails), start the profiles, claim the run directory and a state
// directory, record the provenance, measure, record the end, and report.
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) (code int, err error) {
	fs, f := newRunFlags(stderr)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitUsage, err
	}
	if f.files {
		return listFiles(pos, stdout)
	}
	sc, required, err := f.loadPlan(fs, pos, stderr)
	if err != nil {
		return exitUsage, err
	}
	if f.check {
		return checkVariants(ctx, sc, f.agent, stdout)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(RunGCPercent)
	}
	stopProfiles, err := startProfiles(f.cpuProfile, f.memProfile)
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
	ws, code, err := claimWorkspace(f.runDir(sc), f.concurrent, stderr)
	if err != nil {
		return code, err
	}
	defer ws.release()
	status, err := ws.recordStart(ctx, sc, fs, args)
	if err != nil {
		ws.store.Close()
		return exitFailures, err
	}
	fmt.Fprintf(stderr, "virtbench: running %s (%s) into %s\n", sc.Name, sc.Description, ws.dir)
	if est := bench.EstimateDuration(sc, runtime.NumCPU()); est > 0 {
		fmt.Fprintf(stderr, "virtbench: the plan should take about %v (by the drivers' typical trial times and the workloads' own; images built on first use take longer)\n", est.Round(time.Second))
	}
	outcome, runErr := ws.measure(ctx, sc, f.agent, required, stderr)
	// The run's instances are gone: what their bookkeeping held goes back
	// to the host before the calibration and the report take their own,
	// so that virtbench's peak is the largest of them rather than a sum.
	debug.FreeOSMemory()
	ws.recordCalibration(context.WithoutCancel(ctx), stderr)
	code, err = ws.recordEnd(&status, outcome, runErr, stdout, stderr)
	if err != nil {
		return code, err
	}
	return ws.report(ctx, &status, f, code, runErr, stdout, stderr)
}

// RunGCPercent is the Go collector's target during a run (GOGC, unless
// the environment sets one): virtbench's memory competes with the
// instances it measures, so its heap grows to 1.5 times what it holds
// rather than twice. At a density sweep's top, 4389 containers here, that
// kept the peak RSS of the whole run, report included, at 63.6 MB instead
// of 68 MB, for collections of a heap of about 21 MB.
const RunGCPercent = 50

// checkVariants checks, without measuring, that every variant of sc can run
// here: its driver's Check, with the variant's options (the tools it
// needs, the images it builds). It prints a line per variant and returns
// exitOK when all can, exitFailures when one cannot.
func checkVariants(ctx context.Context, sc *scenarios.Scenario, agent string, stdout io.Writer) (int, error) {
	stateDir, release, err := scratchStateDir()
	if err != nil {
		return exitFailures, err
	}
	defer release()
	var bad []string
	for _, v := range sc.Drivers {
		info, err := drivers.Lookup(v.Driver)
		if err == nil {
			var d drivers.Driver
			if d, err = info.Factory(drivers.Env{Agent: agent, StateDir: stateDir, CacheDir: cacheDir(), Options: sc.VariantOptions(v)}); err == nil {
				err = d.Check(ctx)
			}
		}
		if err != nil {
			bad = append(bad, v.Name)
			fmt.Fprintf(stdout, "%s: cannot run here: %v\n", v.Name, err)
			continue
		}
		fmt.Fprintf(stdout, "%s: can run here\n", v.Name)
	}
	if len(bad) > 0 {
		return exitFailures, fmt.Errorf("%s: %d of %d variants cannot run here: %s", sc.Name, len(bad), len(sc.Drivers), strings.Join(bad, ", "))
	}
	return exitOK, nil
}

// runFlags are virtbench run's flags.
type runFlags struct {
	drivers, workloads string
	warmup             int
	reps               string
	maxDuration        time.Duration
	out, agent, image  string
	trust, concurrent  bool
	verbose, check     bool
	files              bool
	cpuProfile         string
	memProfile         string
	plan               func() *analysis.HostSize
	sets               map[string]string
}

// newRunFlags declares virtbench run's flags on a new flag set.
func newRunFlags(stderr io.Writer) (*flag.FlagSet, *runFlags) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &runFlags{sets: map[string]string{}}
	fs.StringVar(&f.drivers, "drivers", "", "comma-separated variants of the scenario, or drivers with their defaults, to run instead of the scenario's")
	fs.StringVar(&f.workloads, "workloads", "", "comma-separated workloads to run instead of the scenario's")
	fs.StringVar(&f.reps, "reps", "", "measured repetitions per trial, or auto: until the median's 95% interval is within ±5% (at most 30) (default: the scenario's)")
	fs.IntVar(&f.warmup, "warmup", 0, "warmup repetitions per trial, recorded but not summarised (default: the scenario's)")
	fs.DurationVar(&f.maxDuration, "max-duration", 0, "refuse a plan estimated to take longer than this (default: the scenario's max_duration, 8h unless it says)")
	fs.StringVar(&f.out, "out", "", "run directory, new or empty (default results/TIMESTAMP-SCENARIO)")
	fs.BoolVar(&f.trust, "trust-scenario", false, "let the scenario file name host programs and files (qemu.binary, qemu.kernel, fileio -dir, probe -remove, a service's image): virtbench runs or touches them as this user, usually root")
	fs.BoolVar(&f.concurrent, "concurrent", false, "run even while another virtbench run is going on (both runs' host-wide figures are then labelled as shared)")
	fs.StringVar(&f.agent, "agent", defaultAgent(), "path of the virtbench-guest binary")
	fs.BoolVar(&f.check, "check", false, "check the plan and that every variant's driver can run on this host (its tools, its images), print a line per variant, and exit without measuring: 0 when all can, 1 when some cannot")
	fs.BoolVar(&f.files, "files", false, "print the files of the host the scenario file reads (its services' images), one per line as the file names them (relative to its directory unless absolute), and exit: what a campaign copies beside it")
	fs.BoolVar(&f.verbose, "v", false, "also print the table of every metric and the ratios to the baseline (results.md has them)")
	f.plan = hostFlags(fs)
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write virtbench's own CPU profile to `FILE` (go tool pprof)")
	fs.StringVar(&f.memProfile, "memprofile", "", "write virtbench's own memory profile (allocations and heap in use) to `FILE` at the end of the run")
	fs.StringVar(&f.image, "image", "", "image profile for every driver with an image option (container, qemu) whose variant does not set one: minimal or debian (a debootstrapped Debian; the VM boots systemd)")
	fs.Func("set", "option DRIVER.NAME=VALUE for every variant of a driver that does not set it, e.g. qemu.accel=tcg, or VARIANT.NAME=VALUE for one variant (repeatable; virtbench list shows the options)", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || !strings.Contains(k, ".") {
			return fmt.Errorf("want DRIVER.NAME=VALUE, got %q", v)
		}
		f.sets[k] = val
		return nil
	})
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: virtbench run [SCENARIO|FILE] [flags]\n\nRuns a built-in scenario (default quick) or a scenario file. Flags:")
		fs.PrintDefaults()
	}
	return fs, f
}

// loadPlan opens the scenario named by pos (default quick), applies the
// flags to it and checks the plan against this host: every error is the
// user's to fix, and nothing has started. required are the variants the
// user named, which may not be skipped.
func (f *runFlags) loadPlan(fs *flag.FlagSet, pos []string, stderr io.Writer) (*scenarios.Scenario, map[string]bool, error) {
	if len(pos) > 1 {
		return nil, nil, usagef("one scenario at a time, got %q", pos)
	}
	name := "quick"
	if len(pos) == 1 {
		name = pos[0]
	}
	sc, err := scenarios.Open(name)
	if err != nil {
		return nil, nil, usageError{err}
	}
	if err := sc.HostPaths(); err != nil && !f.trust {
		return nil, nil, usagef("%v\nthe scenario file names host programs or files, which would run or be touched with virtbench's privileges: set them on the command line (--set DRIVER.NAME=VALUE), or pass --trust-scenario if you trust the file", err)
	}
	required, err := f.apply(sc, fs, stderr)
	if err != nil {
		return nil, nil, err
	}
	if err := sc.Validate(); err != nil {
		return nil, nil, usageError{err}
	}
	if err := bench.CheckFit(sc, bench.HostLimitsNow()); err != nil {
		return nil, nil, usageError{err}
	}
	if sc.HasLoad() {
		ceiling, err := loadgen.Ceiling(context.Background())
		if err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(stderr, "virtbench: the load generator sends up to %.0f requests/s on this host (measured now)\n", ceiling)
		if err := sc.CheckLoadRates(ceiling); err != nil {
			return nil, nil, usageError{err}
		}
	}
	if err := bench.CheckPlan(sc, runtime.NumCPU()); err != nil {
		return nil, nil, usageError{err}
	}
	return sc, required, nil
}

// apply puts the flags that change the plan into sc.
func (f *runFlags) apply(sc *scenarios.Scenario, fs *flag.FlagSet, stderr io.Writer) (map[string]bool, error) {
	required := map[string]bool{}
	if f.drivers != "" {
		vs, err := selectVariants(sc, splitList(f.drivers))
		if err != nil {
			return nil, err
		}
		sc.Drivers = vs
		for _, v := range vs {
			required[v.Name] = true
		}
	}
	if f.workloads != "" {
		sc.Workloads = selectWorkloads(sc.Workloads, splitList(f.workloads))
	}
	if f.reps != "" {
		reps, auto, err := scenarios.ParseReps(f.reps)
		if err != nil {
			return nil, usagef("--reps: %v", err)
		}
		sc.Reps, sc.Auto = reps, auto
	}
	if f.image != "" {
		for _, info := range drivers.Drivers() {
			if _, ok := info.Option("image"); ok {
				sc.Options[info.Name+".image"] = f.image
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(f.sets)) {
		if err := applySet(sc, k, f.sets[k], stderr); err != nil {
			return nil, err
		}
	}
	if set(fs, "warmup") {
		if f.warmup < 0 {
			return nil, usagef("--warmup %d: want 0 or more", f.warmup)
		}
		sc.Warmup = f.warmup
	}
	if f.maxDuration != 0 {
		sc.MaxDuration = f.maxDuration
	}
	return required, nil
}

// selectWorkloads returns the workloads named, with the scenario's
// arguments where it has the workload.
func selectWorkloads(have []scenarios.Workload, names []string) []scenarios.Workload {
	byName := map[string]scenarios.Workload{}
	for _, w := range have {
		byName[w.Name] = w
	}
	var out []scenarios.Workload
	for _, n := range names {
		w, ok := byName[n]
		if !ok {
			w = scenarios.Workload{Name: n}
		}
		out = append(out, w)
	}
	return out
}

// runDir is the run directory: --out, or results/TIMESTAMP-SCENARIO.
func (f *runFlags) runDir(sc *scenarios.Scenario) string {
	if f.out != "" {
		return f.out
	}
	return filepath.Join("results", time.Now().Format("20060102-150405")+"-"+sc.Name)
}

// workspace is what a run claimed: its run directory and sample store,
// and its private state directory, claimed under the state root's lock
// together with the check for other runs.
type workspace struct {
	dir      string
	store    *results.Store
	stateDir string
	others   []state.Owner
	// unregister removes the run's host-wide record (state.RegisterRun).
	unregister func()
	// keepState keeps the state directory when the run's end could not
	// be recorded: virtbench clean then finds it and marks the run.
	keepState bool
	// prov is env.json's content, and cal the host's calibration, whose
	// end env.json gets once the trials are over.
	prov results.Provenance
	cal  *bench.Calibration
}

// claimWorkspace checks for other runs on the host (whatever their state
// roots: the host-wide registry, state.ActiveRuns) and claims a run
// directory and a state directory in one step, under the host-wide lock.
// On error nothing is left claimed.
func claimWorkspace(dir string, concurrent bool, stderr io.Writer) (*workspace, int, error) {
	host := state.HostDir()
	unlock, err := state.LockHost(host)
	if err != nil {
		return nil, exitFailures, err
	}
	defer unlock()
	others, err := state.ActiveRuns(host)
	if err != nil {
		return nil, exitFailures, err
	}
	if len(others) > 0 && !concurrent {
		return nil, exitUsage, usagef("another virtbench run is going on (%s): wait for it, or pass --concurrent (the host-wide figures of both runs, MemAvailable drop and host CPU, would then include the other's instances)", describeRuns(others))
	}
	store, err := results.CreateStore(dir)
	if err != nil {
		return nil, exitUsage, usageError{err}
	}
	warnOrphans(stderr)
	stateDir, err := makeStateDir()
	if err != nil {
		store.Close()
		return nil, exitFailures, err
	}
	fail := func(err error) (*workspace, int, error) {
		store.Close()
		os.RemoveAll(stateDir)
		return nil, exitFailures, err
	}
	if err := state.Claim(stateDir, dir); err != nil {
		return fail(err)
	}
	self, err := state.Self()
	if err != nil {
		return fail(err)
	}
	unregister, err := state.RegisterRun(host, state.Owner{Process: self, RunDir: dir, StateDir: stateDir})
	if err != nil {
		return fail(err)
	}
	return &workspace{dir: dir, store: store, stateDir: stateDir, others: others, unregister: unregister}, exitOK, nil
}

// release removes the run's host-wide record and its state directory,
// unless the run's end could not be recorded.
func (ws *workspace) release() {
	ws.unregister()
	if !ws.keepState {
		os.RemoveAll(ws.stateDir)
	}
}

// recordStart writes env.json (the provenance of the drivers the plan
// uses) and run.json in the running state.
func (ws *workspace) recordStart(ctx context.Context, sc *scenarios.Scenario, fs *flag.FlagSet, args []string) (results.Status, error) {
	var used []string
	for _, v := range sc.Drivers {
		used = append(used, v.Driver)
	}
	prov := bench.Collect(ctx, used)
	prov.Scenario, prov.ScenarioHash, prov.ScenarioFile = sc.Name, sc.Hash, sc.Source
	if fs.NFlag() > 0 {
		prov.ScenarioFile += " (with command-line flags: " + strings.Join(args, " ") + ")"
	}
	prov.DiskFreeBytes = bench.DiskFree(ctx, ws.stateDir)
	// How fast and how quiet the host is, before anything of the run's.
	ws.cal = bench.StartCalibration(ctx)
	prov.Calibration = ws.cal.Start()
	ws.prov = prov
	// The meaning of every name the run's records will use, as this
	// virtbench declares it: whoever reads the run reads it so.
	vocabulary := results.Linked()
	status := results.Status{Scenario: sc.Name, Description: sc.Description, Args: os.Args[1:], PID: os.Getpid(), Started: time.Now().UTC(), State: results.StateRunning,
		Vocabulary: &vocabulary}
	for _, o := range ws.others {
		status.SharedWith = append(status.SharedWith, describeRun(o))
		_ = state.NoteConcurrent(o.StateDir, ws.dir)
	}
	if err := results.WriteJSON(ws.dir, results.EnvFile, prov); err != nil {
		return status, err
	}
	return status, results.WriteJSON(ws.dir, results.StatusFile, status)
}

// measure runs the plan, every sample into the store, and closes it. The
// first sample that cannot be written stops the run as a signal would:
// what follows could not be kept.
func (ws *workspace) measure(ctx context.Context, sc *scenarios.Scenario, agent string, required map[string]bool, stderr io.Writer) (results.Outcome, error) {
	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	sink := func(s results.Sample) error {
		err := ws.store.Add(s)
		if err != nil {
			stopRun(err)
		}
		return err
	}
	r := &bench.Runner{
		Scenario: sc,
		Env:      drivers.Env{Agent: agent, StateDir: ws.stateDir, CacheDir: cacheDir()},
		Sink:     sink,
		Progress: newProgress(stderr),
		Required: required,
	}
	if kill, ok := ctx.Value(killKey{}).(<-chan struct{}); ok {
		r.Kill = kill
	}
	outcome, runErr := r.Run(runCtx)
	if cause := context.Cause(runCtx); cause != nil && !errors.Is(cause, context.Canceled) {
		runErr = cause // a failed sample write, not the user
	}
	return outcome, errors.Join(runErr, ws.store.Close())
}

// recordCalibration probes the host again once the trials are over and
// writes env.json with the whole calibration. A failure to write it is
// told, and loses only the calibration's end.
func (ws *workspace) recordCalibration(ctx context.Context, stderr io.Writer) {
	ws.prov.Calibration = ws.cal.End(ctx)
	if err := results.WriteJSON(ws.dir, results.EnvFile, ws.prov); err != nil {
		fmt.Fprintf(stderr, "virtbench run: warning: the host's calibration at the end is not recorded: %v\n", err)
	}
}

// recordEnd decides the run's state and exit code from what the runner
// returned and writes run.json with the outcome. When run.json cannot be
// written, the state directory is kept for virtbench clean.
func (ws *workspace) recordEnd(status *results.Status, outcome results.Outcome, runErr error, stdout, stderr io.Writer) (int, error) {
	status.Finished, status.Outcome = time.Now().UTC(), outcome
	for _, o := range state.ConcurrentNotes(ws.stateDir) {
		status.SharedWith = append(status.SharedWith, describeRun(o))
	}
	code := exitOK
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
	if err := results.WriteJSON(ws.dir, results.StatusFile, *status); err != nil {
		ws.keepState = true
		return exitFailures, errors.Join(runErr, fmt.Errorf("recording the end of the run: %w (virtbench clean will mark it)", err))
	}
	return code, nil
}

// report builds every output from the run directory, as virtbench report
// builds it (one path from the samples on disk to every output), and
// prints the terminal summary; it returns the run's exit code and error.
func (ws *workspace) report(ctx context.Context, status *results.Status, f *runFlags, code int, runErr error, stdout, stderr io.Writer) (int, error) {
	run, err := analysis.Load(ws.dir)
	if err != nil {
		return exitFailures, errors.Join(runErr, err)
	}
	an := analysis.Analyze(run, f.plan())
	report, err := reports.WriteAll(an)
	if err != nil {
		return exitFailures, errors.Join(runErr, err)
	}
	if ctx.Err() != nil && code != exitInterrupted {
		// Interrupted while the report was written: say so.
		status.State, status.Reason, code = results.StateInterrupted, "interrupted by a signal while the report was written", exitInterrupted
		if err := results.WriteJSON(ws.dir, results.StatusFile, *status); err != nil {
			return code, err
		}
	}
	for _, w := range run.Warnings {
		fmt.Fprintf(stderr, "virtbench run: warning: %s\n", w)
	}
	fmt.Fprintln(stdout)
	if err := reports.WriteTerminal(stdout, an, f.verbose); err != nil {
		return exitFailures, err
	}
	printOutcome(stdout, status)
	fmt.Fprintf(stdout, "run directory: %s\nreport: %s\n", ws.dir, report)
	if code == exitInterrupted {
		return code, context.Canceled
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return code, runErr
	}
	return code, nil
}

// printOutcome prints what the run did beyond its summaries: density
// sweeps, skipped variants, failures and other runs it shared the host
// with.
func printOutcome(w io.Writer, status *results.Status) {
	outcome := status.Outcome
	for k, v := range outcome.Density {
		fmt.Fprintf(w, "density %s: %s\n", k, v)
	}
	for d, why := range outcome.Skipped {
		fmt.Fprintf(w, "not run: %s: %s\n", d, why)
	}
	for _, c := range outcome.RepsCapped {
		fmt.Fprintf(w, "repetitions capped: %s\n", c)
	}
	for _, f := range outcome.Failures {
		fmt.Fprintf(w, "failed: %s\n", f)
	}
	if more := outcome.FailureCount - len(outcome.Failures); more > 0 {
		fmt.Fprintf(w, "failed: %d more (every failure is a sample in %s)\n", more, results.SamplesFile)
	}
	for _, o := range status.SharedWith {
		fmt.Fprintf(w, "shared the host with: %s\n", o)
	}
}

// listFiles prints the files of the host the scenario named by pos reads
// (scenarios.Scenario.Files), for `virtbench run --files`.
func listFiles(pos []string, stdout io.Writer) (int, error) {
	if len(pos) != 1 {
		return exitUsage, usagef("--files needs one scenario")
	}
	sc, err := scenarios.Open(pos[0])
	if err != nil {
		return exitUsage, usageError{err}
	}
	for _, f := range sc.Files() {
		fmt.Fprintln(stdout, f)
	}
	return 0, nil
}
