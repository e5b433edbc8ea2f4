// Package scenarios describes experiments: which drivers run which
// workloads, how many instances at once, how many repetitions. Scenarios
// are YAML files (see README.md in this directory); the built-in ones are
// embedded. Load validates a file completely before anything starts, and its
// errors name the file and line.
package scenarios

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"virtbench/drivers"
	"virtbench/guest"
	"virtbench/internal/didyoumean"
	"virtbench/internal/loadgen"
	"virtbench/internal/results"
)

// Scenario is a validated experiment.
type Scenario struct {
	// Name identifies the scenario; it is safe as part of a file name.
	Name        string
	Description string
	// Drivers are the variants that run, in this order: named
	// configurations of drivers. A plain driver name in a file is the
	// variant of that name with the driver's defaults.
	Drivers []Variant
	// Workloads run under every driver, in this order.
	Workloads []Workload
	// Instances are the instance counts of the trials: each count is one
	// trial per repetition, with that many instances running at once.
	Instances []int
	// Storm are the counts of start storms, after the Instances trials:
	// each count is one trial per repetition whose instances all start at
	// once, measured for how fast the host starts them (storm.startup,
	// storm.rate).
	Storm []int
	// Reps is the number of measured repetitions of each trial (with
	// Auto, the most); Warmup repetitions run first and are recorded but
	// left out of summaries.
	Reps, Warmup int
	// Auto, when set, repeats each trial only until its figures are known
	// well enough (reps: auto).
	Auto *AutoReps
	// Timeout bounds one trial: starting, running and stopping its instances.
	Timeout time.Duration
	// MaxDuration bounds the whole run as its plan is estimated before it
	// starts (bench.EstimateDuration): a longer plan is refused.
	MaxDuration time.Duration
	// Settle is the wait between READY and the memory sample. When it is
	// not zero, a multi-instance trial or a density sweep also waits first
	// (up to bench.SettleLimit) for the host's MemAvailable to stand still,
	// so that memory stopped instances free late is not counted.
	Settle time.Duration
	// Pause is an idle wait right before each trial's start, after its
	// memory baseline: the same start as hyperfine's with --prepare
	// 'sleep N' (README: "The native baseline against hyperfine").
	Pause time.Duration
	// MemoryBytes is each instance's memory limit (0: driver default).
	MemoryBytes int64
	// Options are settings for every variant of a driver, e.g.
	// "qemu.accel": "tcg"; a variant's own Options win over them.
	Options map[string]string
	// Density, when set, makes the scenario a density sweep instead of
	// repeated trials: instances accumulate in steps until a limit.
	Density *Density
	// Source is the file path, or "builtin:NAME".
	Source string
	// Hash is the SHA-256 of the source bytes, hex, for provenance.
	Hash string

	// lines maps field paths ("instances.1") to their line in Source.
	lines map[string]int
}

// Line returns the line of a field path ("instances.1") in the scenario's
// file, or of its nearest parent that has one; 0 when not known.
func (s *Scenario) Line(field string) int {
	for {
		if l, ok := s.lines[field]; ok {
			return l
		}
		i := strings.LastIndexByte(field, '.')
		if i < 0 {
			return 0
		}
		field = field[:i]
	}
}

// HostPrefix names the settings of the host rather than of a driver, in
// a scenario's options (host.ksm) or a variant's.
const HostPrefix = "host"

// Host declares, as a driver declares its options, the host settings a
// scenario or a variant may set (host.NAME). The runner applies them for
// the trials of the variants that set them and puts the host back
// afterwards, also after an interruption (and `virtbench clean` after a
// crash).
var Host = drivers.Info{Name: HostPrefix, Options: []drivers.Option{
	{Name: "ksm", Values: []string{"off", "on"}, Default: "off",
		Doc: "Kernel Samepage Merging during the variant's trials: on merges identical guest pages at a fast scan rate and waits for merging to settle before memory is sampled"},
}}

// Variant is a named configuration of a driver. Its name keys everything
// measured of it: samples, tables, charts, ratios, claims, capacity.
type Variant struct {
	Name   string
	Driver string
	// Options are the variant's own settings, without the driver prefix
	// ("devices": "emulated"), and host settings with theirs ("host.ksm").
	Options map[string]string
	// Workloads, when not empty, restricts the variant to these of the
	// scenario's workloads (by name).
	Workloads []string
}

// Runs reports whether the variant runs the workload named w.
func (v Variant) Runs(w string) bool {
	return len(v.Workloads) == 0 || slices.Contains(v.Workloads, w)
}

// Variant returns the variant named name.
func (s *Scenario) Variant(name string) (Variant, bool) {
	for _, v := range s.Drivers {
		if v.Name == name {
			return v, true
		}
	}
	return Variant{}, false
}

// VariantNames returns the names of the scenario's variants, in order.
func (s *Scenario) VariantNames() []string {
	var ns []string
	for _, v := range s.Drivers {
		ns = append(ns, v.Name)
	}
	return ns
}

// AutoReps repeats a trial until the 95% interval of the median of each
// of its deciding figures (an idle instance's start, a workload's speed,
// a storm's rate) lies within Width of the median on either side, or
// until the scenario's Reps: at least Min repetitions, as no interval at
// 95% comes from fewer than 6 values. The variants keep taking turns while they
// repeat, so that drift is shared among those still running.
type AutoReps struct {
	Width float64
	Min   int
}

// Auto repetition defaults: the interval's half-width, the fewest
// repetitions, and the most (reps: auto with no max).
const (
	DefaultAutoWidth = 0.05
	DefaultAutoMin   = 6
	DefaultAutoMax   = 30
)

// Point is one instance count of a scenario's trials, and the field of
// the file that gave it.
type Point struct {
	Instances int
	// Storm says that the instances all start at once, as a start storm.
	Storm bool
	Field string
}

// Points returns the scenario's trial points in the order they run: each
// instance count, then each storm count.
func (s *Scenario) Points() []Point {
	var ps []Point
	for i, n := range s.Instances {
		ps = append(ps, Point{Instances: n, Field: fmt.Sprintf("instances.%d", i)})
	}
	for i, n := range s.Storm {
		ps = append(ps, Point{Instances: n, Storm: true, Field: fmt.Sprintf("storm.%d", i)})
	}
	return ps
}

// Density describes a density sweep: instances of each driver start in
// steps and stay up until a limit is reached, then all stop.
type Density struct {
	// Step is "geometric" (each step multiplies the count by Factor) or
	// "linear" (each step adds Factor instances).
	Step   string
	Factor int
	// Max is the largest instance count.
	Max int
	// FloorBytes is the MemAvailable the host keeps: no step starts that
	// would bring MemAvailable below it (0: the larger of 20% of memory
	// and 2 GiB).
	FloorBytes int64
	// LatencyLimit stops the sweep when a step's median start latency
	// exceeds it (0: no limit).
	LatencyLimit time.Duration
	// Parallel bounds how many instances of a step start at once (0: the
	// host's CPU count), so that a step measures how many fit rather
	// than a start storm.
	Parallel int
}

// Workload is one workload of a scenario with its agent flags.
type Workload struct {
	Name string
	Args []string
	// Load, for a workload that serves HTTP, is the load offered to
	// every instance in the open model, and the objective its window is
	// judged against; nil for the workload's own load (or none).
	Load *loadgen.Profile
	// Service, when set, makes the workload the user's own service: Name
	// is the user's, and the agent runs guest.ServiceWorkload.
	Service *Service
}

// Agent returns the agent's workload: guest.ServiceWorkload for a service,
// else Name.
func (w Workload) Agent() string {
	if w.Service != nil {
		return guest.ServiceWorkload
	}
	return w.Name
}

// HTTPPath is the path a request to the workload's server asks for: a
// service's readiness path, or the agent workload's HTTPPath; "" for one
// that serves no HTTP.
func (w Workload) HTTPPath() string {
	if w.Service != nil {
		return w.Service.Ready.HTTP
	}
	gw, _ := guest.Lookup(w.Name)
	return gw.HTTPPath
}

// String returns the workload name, with its flags when it has any.
func (w Workload) String() string {
	if len(w.Args) == 0 {
		return w.Name
	}
	return w.Name + " " + strings.Join(w.Args, " ")
}

// Limits on scenario values, so that a typo cannot ask for a runaway run.
const (
	// MaxLoadRate bounds a load's rate per instance, and MaxLoadWindow
	// its warm-up and window together.
	MaxLoadRate   = 10000
	MaxLoadWindow = 10 * time.Minute
	MaxReps       = 100000
	MaxInstances  = 100000
	MaxTimeout    = 24 * time.Hour
	// MaxRunDuration is the most max_duration may be.
	MaxRunDuration = 30 * 24 * time.Hour
)

// checkWorkloadLoad checks the load profile of the workload at field, if
// it has one.
func (s *Scenario) checkWorkloadLoad(field string, w Workload, bad reporter) {
	if w.Load == nil {
		return
	}
	checkLoad(field+".load", w, *w.Load, bad)
	if s.Density != nil && w.Load.SLO == nil {
		bad(field+".load", "load: a density sweep sends a load only to find how many instances meet its objective: give the load an slo")
	}
}

// checkLoad checks a workload's load profile at field: the workload
// serves HTTP, the rate is one a generator sends, the window is longer
// than the warm-up, and the objective's bounds are bounds.
func checkLoad(field string, w Workload, lp loadgen.Profile, bad reporter) {
	switch {
	case w.Service != nil && w.HTTPPath() == "":
		bad(field, "load: %s's readiness is not probed over HTTP (ready: {http: PATH}); a load profile is sent over HTTP", w.Name)
	case w.HTTPPath() == "":
		bad(field, "load: %s does not serve HTTP; a load profile is for %s or a service", w.Name, strings.Join(guest.HTTPWorkloads(), ", "))
	}
	switch {
	case lp.Rate < 1 || lp.Rate > MaxLoadRate:
		bad(field, "load: rate %g/s is not between 1/s and %d/s per instance", lp.Rate, MaxLoadRate)
	case lp.Duration <= lp.Warmup:
		bad(field, "load: the window (duration %v) must be longer than its warm-up (%v)", lp.Duration, lp.Warmup)
	case lp.Warmup < 0 || lp.Duration+lp.Warmup > MaxLoadWindow:
		bad(field, "load: the warm-up and the window together (%v) are not between 0 and %v", lp.Duration+lp.Warmup, MaxLoadWindow)
	case lp.Windows < 1 || lp.Windows > loadgen.MaxWindows:
		bad(field, "load: windows %d is not between 1 and %d", lp.Windows, loadgen.MaxWindows)
	}
	if o := lp.SLO; o != nil && (o.P99 <= 0 || o.Errors < 0 || o.Errors >= 1) {
		bad(field+".slo", "load: slo: p99 must be a positive duration and errors a share from 0%% to below 100%%")
	}
	if n := lp.Rate * lp.Duration.Seconds(); lp.SLO != nil && n < loadgen.MinRequestsForP99 {
		bad(field, "load: the window holds %.0f requests per instance (rate × duration); a p99 judged against an objective needs %d", n, loadgen.MinRequestsForP99)
	}
}

// Error is a problem in a scenario file.
type Error struct {
	File string
	Line int // 0 when not known
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return e.File + ": " + e.Msg
}

// Validate checks s and returns every problem found, as *Error values
// joined, or nil. Lines come from lines when it knows the field.
func (s *Scenario) Validate() error {
	return s.validate(s.Line)
}

func (s *Scenario) validate(line func(field string) int) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &Error{File: s.Source, Line: line(field), Msg: fmt.Sprintf(format, args...)})
	}
	if !results.ValidVariant(s.Name) {
		bad("name", "name %q must be 1-64 lowercase letters, digits, '-' or '_'", s.Name)
	}
	s.checkDrivers(s.checkOptions(bad), bad)
	s.checkWorkloads(bad)
	s.checkBounds(bad)
	s.checkDensity(bad)
	if len(errs) == 0 {
		return nil
	}
	return Errors(errs)
}

// reporter records a problem at a field of a scenario file.
type reporter func(field, format string, args ...any)

// checkOptions checks the scenario-wide settings and returns the drivers
// with a bad one, whose variants are then not built.
func (s *Scenario) checkOptions(bad reporter) map[string]bool {
	badOpts := map[string]bool{} // drivers with a bad scenario-wide setting
	for _, k := range sortedKeys(s.Options) {
		d, name, ok := strings.Cut(k, ".")
		if !ok {
			bad("options."+k, "options: key %q must be DRIVER.SETTING, e.g. qemu.accel", k)
			continue
		}
		info := Host
		if d != HostPrefix {
			var err error
			if info, err = drivers.Lookup(d); err != nil {
				bad("options."+k, "options: %s: unknown driver %q%s (have %s)", k, d, didyoumean.Suggest(d, append(driverNames(), HostPrefix)), strings.Join(driverNames(), ", "))
				continue
			}
		}
		if err := info.CheckOptions(map[string]string{name: s.Options[k]}); err != nil {
			bad("options."+k, "%v", err)
			badOpts[d] = true
		}
	}
	return badOpts
}

// checkDrivers checks each variant: its name, its driver, the workloads it
// runs, its settings and how they combine, and the workloads' arguments
// under it; badOpts are the drivers checkOptions found a bad setting for.
func (s *Scenario) checkDrivers(badOpts map[string]bool, bad reporter) {
	if len(s.Drivers) == 0 {
		bad("drivers", "drivers: at least one driver is needed")
	}
	seen := map[string]bool{}
	workloads := map[string]bool{}
	for _, w := range s.Workloads {
		workloads[w.Name] = true
	}
	for i, v := range s.Drivers {
		field := fmt.Sprintf("drivers.%d", i)
		if !results.ValidVariant(v.Name) {
			bad(field, "drivers: name %q must be 1-64 lowercase letters, digits, '-' or '_'", v.Name)
		}
		if seen[v.Name] {
			bad(field, "drivers: %q listed twice", v.Name)
		}
		seen[v.Name] = true
		info, err := drivers.Lookup(v.Driver)
		if err != nil {
			bad(field, "drivers: unknown driver %q%s (have %s)", v.Driver, didyoumean.Suggest(v.Driver, driverNames()), strings.Join(driverNames(), ", "))
			continue
		}
		for _, w := range v.Workloads {
			if !workloads[w] {
				bad(field+".workloads", "drivers: %s runs workload %q, which the scenario does not have", v.Name, w)
			}
		}
		own, host := splitHost(v.Options)
		if err := Host.CheckOptions(host); err != nil {
			bad(field+".options."+HostPrefix+"."+firstBad(Host, host), "%v", err)
		}
		if err := info.CheckOptions(own); err != nil {
			bad(field+".options."+firstBad(info, own), "%v", err)
			continue
		}
		if badOpts[v.Driver] {
			continue
		}
		// The factory checks how the settings combine; it starts nothing.
		d, err := info.Factory(drivers.Env{Options: s.VariantOptions(v)})
		if err != nil {
			bad(field, "drivers: %s: %v", v.Name, err)
			continue
		}
		ac, ok := d.(drivers.ArgChecker)
		for j, w := range s.Workloads {
			if ok && v.Runs(w.Name) && !badArgs(w) && w.Service == nil {
				if err := ac.CheckArgs(append([]string{w.Name}, w.Args...)); err != nil {
					bad(fmt.Sprintf("workloads.%d", j), "workloads: %s under %s: %v", shorten(w.String(), 80), v.Name, shorten(err.Error(), 300))
				}
			}
		}
	}
}

// checkWorkloads checks each workload: its arguments, its service or the
// tools it needs on this host, and its load profile.
func (s *Scenario) checkWorkloads(bad reporter) {
	if len(s.Workloads) == 0 {
		bad("workloads", "workloads: at least one workload is needed")
	}
	for i, w := range s.Workloads {
		field := fmt.Sprintf("workloads.%d", i)
		if badArgs(w) {
			bad(field, "workloads: %s: an argument holds a newline, a carriage return or a NUL byte, which no console or command line carries intact", w.Name)
			continue
		}
		if w.Service != nil {
			s.checkService(field, w, bad)
			s.checkWorkloadLoad(field, w, bad)
			continue
		}
		if w.Name == guest.ServiceWorkload {
			bad(field, "workloads: %s is what a service runs: give the workload a service (service.image, service.ready)", w.Name)
			continue
		}
		gw, _, err := guest.Prepare(append([]string{w.Name}, w.Args...))
		if err != nil {
			bad(field, "workloads: %v", err)
			continue
		}
		for _, t := range append(slices.Clip(gw.Tools), gw.HostTools...) {
			if err := t.Check(); err != nil {
				bad(field, "workloads: %s is unavailable on this host: %v", w.Name, err)
			}
		}
		s.checkWorkloadLoad(field, w, bad)
	}
}

// checkBounds checks the instance counts, repetitions and durations
// against their limits.
func (s *Scenario) checkBounds(bad reporter) {
	if len(s.Instances) == 0 && len(s.Storm) == 0 {
		bad("instances", "instances: at least one instance count (or storm count) is needed")
	}
	for _, pt := range s.Points() {
		if pt.Instances < 1 || pt.Instances > MaxInstances {
			field, _, _ := strings.Cut(pt.Field, ".")
			bad(pt.Field, "%s: %d is not between 1 and %d", field, pt.Instances, MaxInstances)
		}
	}
	if len(s.Storm) > 0 && s.Density != nil {
		bad("storm", "storm: a density sweep runs no trials to storm: give storm or density")
	}
	if a := s.Auto; a != nil {
		if a.Width <= 0 || a.Width >= 1 {
			bad("reps", "reps: auto's width %g is not between 0 and 100%%", a.Width)
		}
		if a.Min < 1 || a.Min > s.Reps {
			bad("reps", "reps: auto's min %d is not between 1 and its max %d", a.Min, s.Reps)
		}
	}
	if s.Reps < 1 || s.Reps > MaxReps {
		bad("reps", "reps: %d is not between 1 and %d", s.Reps, MaxReps)
	}
	if s.Warmup < 0 || s.Warmup > MaxReps {
		bad("warmup", "warmup: %d is not between 0 and %d", s.Warmup, MaxReps)
	}
	if s.Timeout <= 0 || s.Timeout > MaxTimeout {
		bad("timeout", "timeout: %v is not between 0 and %v", s.Timeout, MaxTimeout)
	}
	if s.MaxDuration <= 0 || s.MaxDuration > MaxRunDuration {
		bad("max_duration", "max_duration: %v is not between 0 and %v", s.MaxDuration, MaxRunDuration)
	}
	if s.Settle < 0 || s.Settle > time.Hour {
		bad("settle", "settle: %v is not between 0 and 1h", s.Settle)
	}
	if s.Pause < 0 || s.Pause > time.Hour {
		bad("pause", "pause: %v is not between 0 and 1h", s.Pause)
	}
	if s.MemoryBytes < 0 {
		bad("memory", "memory: %d is negative", s.MemoryBytes)
	}
}

// checkDensity checks the density sweep, if the scenario has one.
func (s *Scenario) checkDensity(bad reporter) {
	d := s.Density
	if d == nil {
		return
	}
	if d.Step != "geometric" && d.Step != "linear" {
		bad("density", "density: step %q must be geometric or linear", d.Step)
	}
	if d.Factor < 1 || (d.Step == "geometric" && d.Factor < 2) || d.Factor > MaxInstances {
		bad("density", "density: factor %d must be at least 2 (geometric) or 1 (linear)", d.Factor)
	}
	if d.Max < 1 || d.Max > MaxInstances {
		bad("density", "density: max %d is not between 1 and %d", d.Max, MaxInstances)
	}
	if d.FloorBytes < 0 || d.LatencyLimit < 0 {
		bad("density", "density: floor and latency_limit must not be negative")
	}
	if d.Parallel < 0 || d.Parallel > MaxInstances {
		bad("density", "density: parallel %d is not between 0 (the host's CPU count) and %d", d.Parallel, MaxInstances)
	}
}

// shorten cuts s to n bytes and an ellipsis, for messages that quote an
// argument of any length.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// badArgs reports whether an argument of w holds a byte that would split or
// end a protocol or command line: a newline, a carriage return, a NUL.
func badArgs(w Workload) bool {
	return slices.ContainsFunc(w.Args, func(a string) bool { return strings.ContainsAny(a, "\n\r\x00") })
}

func driverNames() []string {
	var ns []string
	for _, d := range drivers.Drivers() {
		ns = append(ns, d.Name)
	}
	return ns
}

// Errors is a list of scenario errors, printed one per line.
type Errors []error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap lets errors.As find each *Error.
func (es Errors) Unwrap() []error { return es }

// VariantOptions returns the settings variant v runs with, without the
// driver prefix: the scenario's settings for its driver, overridden by
// the variant's own. Driver defaults are not filled in (see
// drivers.Info.Resolve).
func (s *Scenario) VariantOptions(v Variant) map[string]string {
	out := map[string]string{}
	for k, val := range s.Options {
		if rest, ok := strings.CutPrefix(k, v.Driver+"."); ok {
			out[rest] = val
		}
	}
	own, _ := splitHost(v.Options)
	for k, val := range own {
		out[k] = val
	}
	return out
}

// HostSettings returns the host settings variant v runs with: Host's
// defaults, the scenario's host.NAME settings, and the variant's own,
// without the prefix.
func (s *Scenario) HostSettings(v Variant) map[string]string {
	out := Host.Resolve(nil)
	for k, val := range s.Options {
		if rest, ok := strings.CutPrefix(k, HostPrefix+"."); ok {
			out[rest] = val
		}
	}
	_, host := splitHost(v.Options)
	for k, val := range host {
		out[k] = val
	}
	return out
}

// splitHost splits a variant's options into the driver's and the host's
// (without the prefix).
func splitHost(opts map[string]string) (own, host map[string]string) {
	own, host = map[string]string{}, map[string]string{}
	for k, v := range opts {
		if rest, ok := strings.CutPrefix(k, HostPrefix+"."); ok {
			host[rest] = v
		} else {
			own[k] = v
		}
	}
	return own, host
}

// firstBad returns the first setting, by name, that info rejects.
func firstBad(info drivers.Info, opts map[string]string) string {
	for _, k := range sortedKeys(opts) {
		if info.CheckOptions(map[string]string{k: opts[k]}) != nil {
			return k
		}
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// HasLoad reports whether a workload of the scenario carries a load
// profile.
func (s *Scenario) HasLoad() bool {
	return slices.ContainsFunc(s.Workloads, func(w Workload) bool { return w.Load != nil })
}

// CheckLoadRates returns, as Errors with their lines, every load profile
// whose rate per instance is beyond ceiling, what one generator sends on
// this host (loadgen.Ceiling); nil when there is none.
func (s *Scenario) CheckLoadRates(ceiling float64) error {
	var errs []error
	for i, w := range s.Workloads {
		if w.Load != nil && w.Load.Rate > ceiling {
			errs = append(errs, &Error{File: s.Source, Line: s.Line(fmt.Sprintf("workloads.%d.load", i)),
				Msg: fmt.Sprintf("load: %s's rate %g/s is beyond what one generator sends on this host (its ceiling, measured now: %.0f/s)", w.Name, w.Load.Rate, ceiling)})
		}
	}
	return errors.Join(errs...)
}

// HostPaths returns, as Errors with their lines, every setting of the
// scenario that names a program or file of the host: a driver option
// declared drivers.Option.HostPath (qemu.binary, qemu.kernel), a workload
// flag listed in guest.Workload.HostPaths (fileio -dir, probe -remove), a
// service's image file or directory.
// virtbench would run or touch them with its own privileges, usually
// root's, so a scenario file that sets them is trusted code; `virtbench
// run` refuses such a file unless the user says they trust it. It returns
// nil when there are none.
func (s *Scenario) HostPaths() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &Error{File: s.Source, Line: s.Line(field), Msg: fmt.Sprintf(format, args...)})
	}
	option := func(driver, name string) bool {
		info, err := drivers.Lookup(driver)
		if err != nil {
			return false
		}
		o, ok := info.Option(name)
		return ok && o.HostPath
	}
	for _, k := range sortedKeys(s.Options) {
		if d, name, _ := strings.Cut(k, "."); option(d, name) {
			bad("options."+k, "options: %s names a host program or file (%s), which virtbench would run or read as this user", k, s.Options[k])
		}
	}
	for i, v := range s.Drivers {
		for _, k := range sortedKeys(v.Options) {
			if option(v.Driver, k) {
				bad(fmt.Sprintf("drivers.%d.options.%s", i, k), "drivers: %s: %s.%s names a host program or file (%s), which virtbench would run or read as this user", v.Name, v.Driver, k, v.Options[k])
			}
		}
	}
	for i, w := range s.Workloads {
		if w.Service != nil && w.Service.Image.HostPath() != "" {
			bad(fmt.Sprintf("workloads.%d.service.image", i), "workloads: %s's image %s is a file of the host, which virtbench reads and unpacks as this user", w.Name, w.Service.Image)
		}
		gw, ok := guest.Lookup(w.Name)
		if !ok {
			continue
		}
		for _, a := range w.Args {
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if strings.HasPrefix(a, "-") && slices.Contains(gw.HostPaths, name) {
				bad(fmt.Sprintf("workloads.%d", i), "workloads: %s -%s names a file the workload writes or removes (under the native driver, the host's, as this user)", w.Name, name)
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return Errors(errs)
}
