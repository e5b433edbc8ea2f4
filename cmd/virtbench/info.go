package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"virtbench/analysis"
	"virtbench/bench"

	"github.com/moby/moby/client"

	"virtbench/drivers"
	"virtbench/drivers/docker"
	"virtbench/drivers/podman"
	"virtbench/drivers/state"
	"virtbench/guest"
	"virtbench/internal/results"
	"virtbench/internal/units"
	"virtbench/reports"
	"virtbench/scenarios"
)

func cmdList(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	agent := fs.String("agent", defaultAgent(), "path of the virtbench-guest binary")
	if _, err := parseInterleaved(fs, args); err != nil {
		return exitUsage, err
	}
	stateDir, release, err := scratchStateDir()
	if err != nil {
		return exitFailures, err
	}
	defer release()
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DRIVER\tKIND\tAVAILABLE")
	for _, info := range drivers.Drivers() {
		avail := "yes"
		d, err := info.Factory(drivers.Env{Agent: *agent, StateDir: stateDir, CacheDir: cacheDir()})
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = d.Check(cctx)
			cancel()
		}
		if err != nil {
			avail = "no: " + err.Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", info.Name, info.Virtualization, avail)
	}
	fmt.Fprintln(tw, "\nOPTION\tWHAT IT SETS (set with --set OPTION=VALUE, or in a scenario)\t")
	for _, info := range append(drivers.Drivers(), scenarios.Host) {
		for _, o := range info.Options {
			fmt.Fprintf(tw, "%s.%s\t%s\t\n", info.Name, o.Name, o.Usage())
		}
	}
	fmt.Fprintln(tw, "\nSCENARIO\tDESCRIPTION\t")
	for _, name := range scenarios.Builtins() {
		sc, err := scenarios.Builtin(name)
		desc := ""
		if err != nil {
			desc = "invalid: " + err.Error()
		} else {
			desc = sc.Description
		}
		fmt.Fprintf(tw, "%s\t%s\t\n", name, desc)
	}
	fmt.Fprintln(tw, "\nWORKLOAD\tWHAT IT DOES\t")
	for _, w := range guest.Workloads() {
		fmt.Fprintf(tw, "%s\t%s\t\n", w.Name, w.Summary)
	}
	return exitOK, tw.Flush()
}

func cmdEnv(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("env", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseInterleaved(fs, args); err != nil {
		return exitUsage, err
	}
	var all []string
	for _, info := range drivers.Drivers() {
		all = append(all, info.Name)
	}
	p := bench.Collect(ctx, all)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return exitOK, enc.Encode(p)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	rows := [][2]string{
		{"host", p.Hostname}, {"os", p.OS}, {"kernel", p.Kernel}, {"virtualization", p.Virtualized},
		{"cpu", p.CPUModel}, {"cores", fmt.Sprint(p.Cores)}, {"memory", units.Format(float64(p.MemoryBytes), "B")},
		{"limits", reports.LimitsText(p)},
		{"cgroup", p.CgroupVersion}, {"ksm", p.KSM}, {"/dev/kvm", p.KVM},
		{"virtbench", p.Virtbench}, {"go", p.Go},
	}
	var tools []string
	for k := range p.Tools {
		tools = append(tools, k)
	}
	sort.Strings(tools)
	for _, k := range tools {
		rows = append(rows, [2]string{k, p.Tools[k]})
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return exitOK, tw.Flush()
}

func cmdReport(_ context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "html", "what to print besides regenerating the files: html (the report path), md, csv, json, text (the terminal summary), prometheus, openmetrics, or runtimeclass (a Kubernetes RuntimeClass per isolating variant, its overhead.podFixed as measured)")
	checkRC := fs.String("check-runtimeclass", "", "a file of Kubernetes RuntimeClasses: say whether each one's overhead.podFixed covers what this run measured for its handler (exit 1 where one does not)")
	verbose := fs.Bool("v", false, "with --format text: also the table of every metric and the ratios to the baseline")
	instances := fs.Int("instances", 0, "with a fleet directory: also the host type that holds this many idle instances of each variant for the least per hour (by the hosts' price_per_hour)")
	plan := hostFlags(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitUsage, err
	}
	if len(pos) != 1 {
		return exitUsage, usagef("want one RUN_DIR (or a fleet directory of them), got %d arguments", len(pos))
	}
	run, err := analysis.Load(pos[0])
	if errors.Is(err, analysis.ErrNotRun) {
		fleet, ferr := analysis.LoadFleet(pos[0])
		if ferr == nil {
			return reportFleet(fleet, *format, *instances, stdout, stderr)
		}
		if errors.Is(ferr, analysis.ErrNotFleet) {
			err = fmt.Errorf("%w, nor a fleet directory (a directory per host, each holding its run directory)", err)
		} else {
			err = ferr
		}
	}
	if err != nil {
		return exitUsage, usageError{err}
	}
	for _, w := range run.Warnings {
		fmt.Fprintf(stderr, "virtbench report: warning: %s\n", w)
	}
	an := analysis.Analyze(run, plan())
	if *checkRC != "" {
		rcs, err := reports.ReadRuntimeClasses(*checkRC)
		if err != nil {
			return exitUsage, usageError{err}
		}
		covered, err := reports.CheckRuntimeClasses(stdout, an, rcs)
		if err == nil && !covered {
			return exitFailures, errors.New("a RuntimeClass's overhead does not cover what this run measured")
		}
		return exitOK, err
	}
	path, err := reports.WriteAll(an)
	if err != nil {
		return exitFailures, err
	}
	switch strings.ToLower(*format) {
	case "html":
		fmt.Fprintln(stdout, path)
	case "md":
		err = reports.WriteMarkdown(stdout, an.Index)
	case "csv":
		err = reports.WriteCSV(stdout, an.Index.Summaries)
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(an.Index.Summaries)
	case "text":
		if run.Status.State == results.StateRunning {
			fmt.Fprintf(stdout, "%s\n\n", analysis.Unfinished(run.Status))
		}
		err = reports.WriteTerminal(stdout, an, *verbose)
	case "prometheus":
		err = reports.WriteExposition(stdout, an, reports.FormatPrometheus)
	case "openmetrics":
		err = reports.WriteExposition(stdout, an, reports.FormatOpenMetrics)
	case "runtimeclass":
		err = reports.WriteRuntimeClasses(stdout, an)
	default:
		return exitUsage, usagef("unknown --format %q (html, md, csv, json, text, prometheus, openmetrics, runtimeclass)", *format)
	}
	return exitOK, err
}

// reportFleet writes the report of a fleet directory (runs of one
// scenario on several hosts) and prints its path, or with --format text
// or md its tables.
func reportFleet(f *analysis.Fleet, format string, instances int, stdout, stderr io.Writer) (int, error) {
	for _, w := range f.Warnings {
		fmt.Fprintf(stderr, "virtbench report: warning: %s\n", w)
	}
	fa := analysis.AnalyzeFleet(f, instances)
	path, err := reports.WriteFleet(f, fa)
	if err != nil {
		return exitFailures, err
	}
	switch strings.ToLower(format) {
	case "html":
		fmt.Fprintln(stdout, path)
	case "text":
		err = reports.WriteFleetText(stdout, f, fa)
	case "md":
		err = reports.WriteFleetMarkdown(stdout, f, fa)
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(fa)
	default:
		return exitUsage, usagef("a fleet directory's report is html, text, md or json, not %q", format)
	}
	return exitOK, err
}

func cmdCompare(_ context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	failPct := -1.0
	fs.Func("fail-on-regression", "exit 1 when a significant regression exceeds this many percent (0 or more)", func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("want a percentage of 0 or more, got %q", v)
		}
		failPct = f
		return nil
	})
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: virtbench compare BASE_RUN RUN [RUN...] [flags]\n\nCompares every run with the first, metric by metric (Mann-Whitney U, alpha 0.05). Flags:")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitUsage, err
	}
	if len(pos) < 2 {
		return exitUsage, usagef("want a base run and at least one run to compare, got %d", len(pos))
	}
	var runs []*analysis.Run
	for _, dir := range pos {
		r, err := analysis.Load(dir)
		if err != nil {
			return exitUsage, usageError{err}
		}
		runs = append(runs, r)
	}
	changes := analysis.Compare(runs)
	if len(changes) == 0 {
		return exitUsage, usagef("the runs have no metric in common (same driver, workload, instance count and metric): nothing to compare")
	}
	if err := reports.WriteCompare(stdout, changes); err != nil {
		return exitFailures, err
	}
	if failPct < 0 {
		return exitOK, nil
	}
	if regs := analysis.Regressions(changes, failPct); len(regs) > 0 {
		for _, c := range regs {
			fmt.Fprintf(stdout, "regression: %s %s %s %+.1f%% (p=%.3f)\n", c.Variant, c.Workload, c.Metric, 100*c.Delta, c.P)
		}
		return exitFailures, fmt.Errorf("%d significant regressions above %.1f%%", len(regs), failPct)
	}
	return exitOK, nil
}

func cmdClean(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("clean", flag.ContinueOnError)
	fs.SetOutput(stderr)
	imagesToo := fs.Bool("images", false, "also remove the images virtbench made: the Docker images it imported (label virtbench=agent) and its image cache")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: virtbench clean [--images]\n\nRemoves what killed virtbench runs left: the processes, mounts, cgroups and\ncontainers their state directories (under %s) recorded, then the\ndirectories, and puts back the host's KSM settings that killed runs held\n(under any state root: %s). Runs whose virtbench still runs are left alone.\n\n", stateRoot(), state.HostDir())
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitUsage, err
	}
	if len(pos) > 0 {
		return exitUsage, usagef("clean takes no arguments")
	}
	orphans, err := state.Orphans(stateRoot())
	if err != nil {
		return exitFailures, err
	}
	var errs []error
	for _, o := range orphans {
		did, err := state.Clean(o)
		for _, d := range did {
			fmt.Fprintln(stdout, d)
		}
		errs = append(errs, err)
		// The state directory is how clean finds the run: it goes only
		// once the run's end is recorded.
		if err := markKilled(o.Owner.RunDir); err != nil {
			errs = append(errs, fmt.Errorf("%w: kept %s; run virtbench clean again once there is room", err, o.Dir))
			continue
		}
		if err := state.Remove(o); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(stdout, "removed", o.Dir)
	}
	// What killed runs held host-wide (KSM's settings), whatever their
	// state roots.
	did, err := state.CleanHost(state.HostDir())
	for _, d := range did {
		fmt.Fprintln(stdout, d)
	}
	errs = append(errs, err)
	if len(orphans) == 0 && len(did) == 0 {
		fmt.Fprintln(stdout, "no state left by killed runs")
	}
	if *imagesToo {
		removed, err := docker.RemoveImages(ctx, nil)
		for _, r := range removed {
			fmt.Fprintln(stdout, "removed docker image", r)
		}
		if err != nil && !client.IsErrConnectionFailed(err) {
			errs = append(errs, err)
		}
		if err := podman.RemoveStore(cacheDir()); err != nil {
			errs = append(errs, err)
		}
		if err := os.RemoveAll(cacheDir()); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Fprintln(stdout, "removed", cacheDir())
		}
	}
	return exitOK, errors.Join(errs...)
}

// markKilled records in a killed run's run.json that it did not finish.
// A run directory that is gone, or whose run.json is unreadable or already
// says how the run ended, needs nothing.
func markKilled(runDir string) error {
	var st results.Status
	if runDir == "" || results.ReadJSON(runDir, results.StatusFile, &st) != nil || st.State != results.StateRunning {
		return nil
	}
	st.State, st.Reason = results.StateKilled, "virtbench ended without recording the end of the run (killed, or its disk was full); virtbench clean removed its leftovers"
	st.Finished = time.Now().UTC()
	if err := results.WriteJSON(runDir, results.StatusFile, st); err != nil {
		return fmt.Errorf("marking %s as killed: %w", runDir, err)
	}
	return nil
}
