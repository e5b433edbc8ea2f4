package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"virtbench/drivers"
	"virtbench/drivers/state"
	"virtbench/guest"
	"virtbench/internal/ksm"
	"virtbench/internal/results"
	"virtbench/internal/stats"
	"virtbench/scenarios"
)

// StopTimeout bounds stopping one instance, also after an interruption.
const StopTimeout = 30 * time.Second

// Runner runs one scenario.
type Runner struct {
	Scenario *scenarios.Scenario
	// Env is passed to every driver; Options are filled per driver from
	// the scenario.
	Env drivers.Env
	// Sink receives every sample as soon as it is taken.
	Sink func(results.Sample) error
	// Progress, when not nil, receives one line per trial.
	Progress io.Writer
	// Required variants (by name) fail the run when unavailable; the
	// others are skipped with a note.
	Required map[string]bool
	// Kill, when closed, makes every stop immediate (SIGKILL without a
	// grace period): the user asked twice.
	Kill <-chan struct{}
	// Host reads the host-wide figures the guards and density sweeps
	// decide on; nil means SystemHost.
	Host Host
	// KSMDir is where KSM's knobs are, for variants with host.ksm=on;
	// "" means ksm.Dir. KSMWindow is the window over which merging must
	// stop growing to count as settled; 0 means 2 s.
	KSMDir    string
	KSMWindow time.Duration
	// HostDir is the host-wide directory that every virtbench on the
	// host shares (the KSM holds among it); "" means state.HostDir().
	HostDir string

	ksm *hostKSM // set while a run has variants with host.ksm=on
	// loads counts the run's load profiles sent, naming each one's
	// generators' cgroup.
	loads atomic.Int64
	dog   *watchdog
	// vocab is what the linked drivers and workloads declare, read once
	// when the run starts: the meaning the run records in run.json.
	vocab results.Vocabulary
	// services are the scenario's services by workload name, their
	// images unpacked before any variant is prepared.
	services map[string]*service
}

func (r *Runner) host() Host {
	if r.Host == nil {
		return SystemHost{}
	}
	return r.Host
}

// Run runs every trial of the scenario. It returns ctx's error when
// interrupted (after stopping every instance) and an error when a required
// driver is unavailable or a sample cannot be stored; failed measurements
// are samples and Outcome.Failures, not errors. Host settings it changed
// (host.ksm) are put back before it returns, however it ends.
func (r *Runner) Run(ctx context.Context) (results.Outcome, error) {
	for _, v := range r.Scenario.Drivers {
		if r.Scenario.HostSettings(v)["ksm"] == "on" && r.ksm == nil {
			dir := r.KSMDir
			if dir == "" {
				dir = ksm.Dir
			}
			if err := ksm.Available(dir); err != nil {
				return results.Outcome{}, fmt.Errorf("variant %s asks for host.ksm=on: %w", v.Name, err)
			}
			host := r.HostDir
			if host == "" {
				host = state.HostDir()
			}
			r.ksm = &hostKSM{dir: dir, hostDir: host, window: r.KSMWindow}
			if r.ksm.window == 0 {
				r.ksm.window = 2 * time.Second
			}
		}
	}
	r.dog = &watchdog{}
	dogCtx, stopDog := context.WithCancel(ctx)
	go r.dog.watch(dogCtx)
	out, err := r.run(ctx)
	stopDog()
	if r.ksm != nil {
		if kerr := r.ksm.restore(); kerr != nil {
			err = errors.Join(err, fmt.Errorf("bench: putting the host's KSM settings back: %w", kerr))
		}
	}
	return out, err
}

func (r *Runner) run(ctx context.Context) (results.Outcome, error) {
	out := results.Outcome{Skipped: map[string]string{}, Labels: map[string]map[string]string{}, Variants: map[string]results.VariantRecord{},
		Virtualization: map[string]string{}}
	r.vocab = results.Linked()
	if err := r.prepareServices(ctx, &out); err != nil {
		return out, err
	}
	vs, err := r.prepareVariants(ctx, &out)
	if err != nil {
		return out, err
	}
	if err := r.recordServiceImages(vs); err != nil {
		return out, err
	}
	if r.Scenario.Density != nil {
		return out, r.runDensity(ctx, vs, &out)
	}
	return out, r.runTrials(ctx, vs, &out)
}

// variant is a variant of the scenario whose driver is ready to run.
type variant struct {
	name string
	v    scenarios.Variant
	d    drivers.Driver
}

// prepareVariants builds and checks each variant's driver and records the
// variant (its settings and role) and its image. A variant whose driver is
// unavailable on this host is skipped with the reason, unless the user
// asked for it by name.
func (r *Runner) prepareVariants(ctx context.Context, out *results.Outcome) ([]variant, error) {
	sc := r.Scenario
	var vs []variant
	for _, v := range sc.Drivers {
		name := v.Name
		info, err := drivers.Lookup(v.Driver)
		if err != nil {
			return nil, err
		}
		env := r.Env
		env.Options = sc.VariantOptions(v)
		d, err := info.Factory(env)
		if err == nil {
			err = d.Check(ctx)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if r.Required[name] || !errors.Is(err, drivers.ErrUnavailable) {
				return nil, fmt.Errorf("driver %s: %w", name, err)
			}
			out.Skipped[name] = err.Error()
			r.progress("skip %s: %v", name, err)
			continue
		}
		if err := r.prepareServicesOf(name, v, d); err != nil {
			return nil, err
		}
		if v = r.leaveOutKnownFailures(name, v, d, out); v.Workloads != nil && len(v.Workloads) == 0 {
			continue // every workload left out, each with its reason
		}
		vs = append(vs, variant{name, v, d})
		out.Virtualization[name] = info.Virtualization
		// The first plain process is the baseline the others are set against.
		role := results.Role{Class: info.Class, Baseline: info.Class == results.ClassNone && out.Baseline() == "", Handler: info.Handler}
		out.Variants[name] = results.VariantRecord{Driver: v.Driver, Options: info.Resolve(env.Options), Host: sc.HostSettings(v), Role: role}
		if err := r.recordImage(name, d); err != nil {
			return nil, err
		}
		if err := r.recordFloor(ctx, name, d, out); err != nil {
			return nil, err
		}
	}
	return vs, nil
}

// recordFloor records the floor of a variant's start where its driver
// measures one (drivers.Floorer); a floor that cannot be measured is a
// failure of the run's, which goes on.
func (r *Runner) recordFloor(ctx context.Context, variant string, d drivers.Driver, out *results.Outcome) error {
	f, ok := d.(drivers.Floorer)
	if !ok {
		return nil
	}
	r.progress("%s: timing its driver's bare start (the floor of its start)", variant)
	ms, err := f.Floor(ctx)
	for i, m := range ms {
		if err := r.sink(results.Sample{Time: time.Now().UTC(), Variant: variant, Workload: results.ImageWorkload, Instances: 1, Rep: i, Metric: m.Metric, Unit: m.Unit, Value: m.Value}); err != nil {
			return err
		}
	}
	if err != nil && ctx.Err() == nil {
		out.FailureCount++
		out.Failures = append(out.Failures, fmt.Sprintf("%s: the floor of its start: %v", variant, err))
		r.progress("%s: the floor of its start: %v", variant, err)
	}
	return ctx.Err()
}

// leaveOutKnownFailures returns v without the workloads its driver is
// known to fail on this host (drivers.KnownFailer), each recorded as
// skipped with the reason and said once; v itself where none is. An
// empty, non-nil Workloads says that none is left.
func (r *Runner) leaveOutKnownFailures(name string, v scenarios.Variant, d drivers.Driver, out *results.Outcome) scenarios.Variant {
	kf, ok := d.(drivers.KnownFailer)
	if !ok {
		return v
	}
	runs, left := []string{}, false
	for _, w := range r.Scenario.Workloads {
		if !v.Runs(w.Name) {
			continue
		}
		if why := kf.KnownFailure(w.Name); why != "" {
			key := name + " " + w.Name
			out.Skipped[key] = "left out, known to fail on this host: " + why
			r.progress("skip %s: %s", key, out.Skipped[key])
			left = true
			continue
		}
		runs = append(runs, w.Name)
	}
	if left {
		v.Workloads = runs
	}
	return v
}

// runDensity runs the density sweep of every variant and workload.
func (r *Runner) runDensity(ctx context.Context, vs []variant, out *results.Outcome) error {
	for _, d := range vs {
		for _, w := range r.Scenario.Workloads {
			if !d.v.Runs(w.Name) {
				continue
			}
			sweep := r.density
			if w.Load != nil && w.Load.SLO != nil {
				sweep = r.objective
			}
			if err := sweep(ctx, d.name, d.v.Driver, d.d, w, out); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// trialPlan is what the ordinary trials of a run share: the progress
// count, the host's memory floor and the most each variant's instance
// took so far, which the guards plan the next trial with.
type trialPlan struct {
	total int
	floor int64
	costs map[string]*cost
}

// runTrials runs every workload at every point (instance count, then
// storm count), the variants taking turns rep by rep, so that a host that
// drifts (other tenants, thermal state) drifts under every variant alike
// and ratios between them measured in one run stay fair.
func (r *Runner) runTrials(ctx context.Context, vs []variant, out *results.Outcome) error {
	sc := r.Scenario
	p := trialPlan{costs: map[string]*cost{}}
	for _, d := range vs {
		for _, w := range sc.Workloads {
			if d.v.Runs(w.Name) {
				p.total += len(sc.Points()) * (sc.Warmup + sc.Reps)
			}
		}
		info, _ := drivers.Lookup(d.v.Driver)
		p.costs[d.name] = &cost{estimate: info.Estimate}
	}
	if vm, err := r.host().MemTotal(ctx); err == nil {
		p.floor = results.DensityFloor(vm)
	}
	if err := r.recordHostNoise(ctx); err != nil {
		return err
	}
	for _, w := range sc.Workloads {
		for _, d := range vs {
			p.costs[d.name].demand = Demand(sc, d.v, w)
		}
		for _, pt := range sc.Points() {
			if err := r.runPoint(ctx, vs, w, pt, &p, out); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// hostNoiseReads is how many times the host's MemAvailable drop is read
// with no instance.
const hostNoiseReads = 4

// recordHostNoise records the host's MemAvailable noise
// (results.MetricHostMemNoise): the largest drop, read as a trial reads
// it, over the scenario's settle time (at least MinCPUWindow) with no
// instance running.
func (r *Runner) recordHostNoise(ctx context.Context) error {
	h := r.host()
	window := max(r.Scenario.Settle, MinCPUWindow)
	var noise int64
	for range hostNoiseReads {
		before, err := stableMemAvailable(ctx, h)
		if err != nil {
			return nil // no MemAvailable: no drop is measured either
		}
		select {
		case <-time.After(window):
		case <-ctx.Done():
			return ctx.Err()
		}
		after, err := stableMemAvailable(ctx, h)
		if err != nil {
			return nil
		}
		noise = max(noise, before-after, after-before)
	}
	return r.sink(results.Sample{Time: time.Now().UTC(), Variant: results.HostVariant, Instances: 1, Metric: results.MetricHostMemNoise, Unit: "B", Value: float64(noise)})
}

// runPoint runs the warmups and reps of one workload at one point. Each
// variant's guards are checked before its first trial of the point: a
// variant they stop is skipped there, with the reason. With reps: auto a
// variant stops repeating once its figures are known well enough
// (repeats), the others going on taking turns.
func (r *Runner) runPoint(ctx context.Context, vs []variant, w scenarios.Workload, pt scenarios.Point, p *trialPlan, out *results.Outcome) error {
	sc := r.Scenario
	n := pt.Instances
	done := map[string]bool{}
	values := map[string]map[string][]float64{} // variant → deciding metric → values
	for rep := -sc.Warmup; rep < sc.Reps; rep++ {
		for _, d := range vs {
			if !d.v.Runs(w.Name) || done[d.name] {
				continue
			}
			if rep == -sc.Warmup {
				if reason := r.guard(ctx, n, p.costs[d.name], p.floor); reason != "" {
					done[d.name] = true
					out.Skipped[pointName(d.name, w, pt)] = reason
					r.progress("skip %s: %s", pointName(d.name, w, pt), reason)
					p.total -= sc.Warmup + sc.Reps
					continue
				}
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			out.Trials++
			t := trial{r: r, name: d.name, d: d.d, w: w, n: n, storm: pt.Storm, rep: rep, out: out, ksm: sc.HostSettings(d.v)["ksm"] == "on"}
			line, err := t.run(ctx)
			if err != nil {
				return err
			}
			if !t.excluded {
				p.costs[d.name].add(t.cost)
				if rep >= 0 {
					values[d.name] = appendValues(values[d.name], t.deciding)
				}
			}
			if sc.Auto != nil && rep >= 0 {
				if stop, why := repeats(sc, rep+1, values[d.name]); stop {
					done[d.name] = true
					p.total -= sc.Reps - rep - 1
					line += "; " + why
				} else if rep+1 == sc.Reps {
					out.RepsCapped = append(out.RepsCapped, pointName(d.name, w, pt)+": "+why)
					line += "; " + why
				}
			}
			r.progress("[%d/%d] %s", out.Trials, p.total, line)
		}
	}
	return nil
}

// pointName names a variant's trials of a workload at a point, as the
// skip notes and the capped repetitions say it.
func pointName(variant string, w scenarios.Workload, pt scenarios.Point) string {
	if pt.Storm {
		return fmt.Sprintf("%s %s storm of %d", variant, w.Name, pt.Instances)
	}
	return fmt.Sprintf("%s %s ×%d", variant, w.Name, pt.Instances)
}

func appendValues(to, from map[string][]float64) map[string][]float64 {
	if to == nil {
		to = map[string][]float64{}
	}
	for m, vs := range from {
		to[m] = append(to[m], vs...)
	}
	return to
}

// repeats says, under reps: auto, whether a variant's trials of a point
// may stop after reps repetitions: once they are at least the scenario's
// minimum and the 95% interval of the median of every deciding figure is
// within the scenario's width of the median on either side. why says how
// wide the widest interval is.
func repeats(sc *scenarios.Scenario, reps int, values map[string][]float64) (stop bool, why string) {
	if len(values) == 0 {
		return reps >= sc.Auto.Min, fmt.Sprintf("nothing to decide on after %d repetitions", reps)
	}
	widest, metric := 0.0, ""
	for _, m := range slices.Sorted(maps.Keys(values)) {
		s := stats.Describe(values[m])
		w := math.Inf(1)
		if s.HasInterval() && s.Median != 0 {
			w = max(s.Median-s.CILo, s.CIHi-s.Median) / math.Abs(s.Median)
		}
		if metric == "" || w > widest {
			widest, metric = w, m
		}
	}
	if math.IsInf(widest, 1) {
		return false, fmt.Sprintf("%s has no 95%% interval yet after %d repetitions", metric, reps)
	}
	why = fmt.Sprintf("%s's median known to ±%.1f%% after %d repetitions (wanted ±%.0f%%)", metric, 100*widest, reps, 100*sc.Auto.Width)
	return reps >= sc.Auto.Min && widest <= sc.Auto.Width, why
}

// cost is what one instance of a driver took of the host, the most seen
// in a trial so far (0 where not measured yet), the driver's estimate
// for what was not measured, and what the trial's workload asks for.
type cost struct {
	memory, tasks, disk float64
	estimate            drivers.Estimate
	demand              guest.Demand
}

func (c *cost) add(o cost) {
	c.memory, c.tasks, c.disk = max(c.memory, o.memory), max(c.tasks, o.tasks), max(c.disk, o.disk)
}

// guard says why n instances of c each must not start: they would take
// MemAvailable below floor, more tasks than the host allows, or the free
// disk where their files go below DiskReserve. It returns "" when they
// may. Measured costs are used where there are some, else the driver's
// estimate, and what the workload asks for (c.demand) where that is more;
// either is taken guardMargin times.
func (r *Runner) guard(ctx context.Context, n int, c *cost, floor int64) string {
	h := r.host()
	mem, memFrom := c.memory, "measured"
	if mem == 0 {
		mem, memFrom = float64(c.estimate.MemoryBytes), "estimated"
	}
	if d := float64(c.demand.MemoryBytes); d > mem {
		mem, memFrom = d, "asked for by the workload,"
	}
	if avail, err := h.MemAvailable(ctx); err == nil && floor > 0 && mem > 0 {
		if need := guardMargin * mem * float64(n); float64(avail)-need < float64(floor) {
			return fmt.Sprintf("%d instances need about %s (%s %s each); only %s is available above the memory floor of %s",
				n, fmtBytes(int64(need)), memFrom, fmtBytes(int64(mem)), fmtBytes(avail-floor), fmtBytes(floor))
		}
	}
	tasks, tasksFrom := c.tasks, "measured"
	if tasks == 0 {
		tasks, tasksFrom = float64(c.estimate.Tasks), "estimated"
	}
	lim := h.Limits()
	if inUse, err := h.TasksInUse(ctx); err == nil && lim.Tasks > 0 && tasks > 0 {
		budget := results.PidsCap*float64(lim.Tasks) - float64(inUse)
		if need := guardMargin * tasks * float64(n); need > budget {
			return fmt.Sprintf("%d instances need about %.0f tasks (%s %.0f each); the host allows %d (%s), %d are in use and %.0f%% is kept for instances",
				n, need, tasksFrom, tasks, lim.Tasks, lim.TasksLimit, inUse, 100*results.PidsCap)
		}
	}
	disk, diskFrom := c.disk, "measured"
	if d := float64(c.demand.DiskBytes); d > disk {
		disk, diskFrom = d, "written by the workload"
	}
	if disk > 0 {
		// A native workload writes to the host's temporary directory.
		for _, dir := range []string{r.Env.StateDir, os.TempDir()} {
			free, err := h.DiskFree(ctx, dir)
			if err != nil {
				continue
			}
			if need := guardMargin * disk * float64(n); float64(free)-need < DiskReserve {
				return fmt.Sprintf("%d instances need about %s of disk (%s each, %s); only %s is free in %s, and %s is kept free",
					n, fmtBytes(int64(need)), fmtBytes(int64(disk)), diskFrom, fmtBytes(free), dir, fmtBytes(DiskReserve))
			}
		}
	}
	return ""
}

// Demand returns what one instance of variant v running workload w asks
// of the host beyond its isolation's measured cost: the memory and disk
// the workload's flags ask for (guest.Workload.Demand), its memory no
// more than the guest's RAM where the guest has its own (GuestRAM).
func Demand(sc *scenarios.Scenario, v scenarios.Variant, w scenarios.Workload) guest.Demand {
	d, _ := guest.DemandOf(append([]string{w.Agent()}, w.Args...))
	if ram := GuestRAM(sc, v); ram > 0 {
		d.MemoryBytes = min(d.MemoryBytes, ram)
	}
	return d
}

// GuestRAM returns the RAM of variant v's guest (drivers.Info.GuestMemory),
// or 0 when its instances have none of their own. A guest may touch all
// of it, but an idle one touches a fraction: it bounds one instance, not
// the sum over a trial's instances.
func GuestRAM(sc *scenarios.Scenario, v scenarios.Variant) int64 {
	if info, err := drivers.Lookup(v.Driver); err == nil && info.GuestMemory != nil {
		return info.GuestMemory(sc.VariantOptions(v), sc.MemoryBytes)
	}
	return 0
}

// recordImage records the disk footprint of a variant's shared image.
func (r *Runner) recordImage(variant string, d drivers.Driver) error {
	is, ok := d.(drivers.ImageSizer)
	if !ok {
		return nil
	}
	s := results.Sample{Time: time.Now().UTC(), Variant: variant, Workload: results.ImageWorkload, Instances: 1, Unit: "B"}
	u, err := is.ImageUsage()
	if err != nil {
		s.Metric, s.Error = results.MetricImageAllocated, err.Error()
		return r.sink(s)
	}
	s.Metric, s.Value = results.MetricImageApparent, float64(u.Apparent)
	if err := r.sink(s); err != nil {
		return err
	}
	s.Metric, s.Value = results.MetricImageAllocated, float64(u.Allocated)
	if err := r.sink(s); err != nil {
		return err
	}
	if err := r.recordTools(s, d); err != nil {
		return err
	}
	if p, ok := d.(drivers.Preparer); ok {
		for _, m := range p.Prepared() {
			s.Metric, s.Unit, s.Value = m.Metric, m.Unit, m.Value
			if err := r.sink(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// recordTools records the disk footprint of the tools layer beside the
// image's (s) when the scenario runs a workload of the layer: building it
// here, before any trial, keeps its making out of every start.
func (r *Runner) recordTools(s results.Sample, d drivers.Driver) error {
	ts, ok := d.(drivers.ToolsSizer)
	if !ok || !slices.ContainsFunc(r.Scenario.Workloads, func(w scenarios.Workload) bool { return guest.NeedsTools(w.Agent()) }) {
		return nil
	}
	u, err := ts.ToolsUsage()
	if err != nil {
		s.Metric, s.Value, s.Error = results.MetricToolsAllocated, 0, err.Error()
		return r.sink(s)
	}
	s.Metric, s.Value = results.MetricToolsApparent, float64(u.Apparent)
	if err := r.sink(s); err != nil {
		return err
	}
	s.Metric, s.Value = results.MetricToolsAllocated, float64(u.Allocated)
	return r.sink(s)
}

// sink passes s to Sink. A value that cannot have been measured (see
// results.Sample.Check: a negative duration, a value beyond any) is a
// fault, never a figure: it is kept as a failed sample that says so.
func (r *Runner) sink(s results.Sample) error { return r.Sink(r.checked(s)) }

// checked returns s, or, when its value cannot have been measured
// (results.Sample.Check, by the linked declarations the run records),
// s as a failure that says so.
func (r *Runner) checked(s results.Sample) results.Sample {
	if err := s.Check(r.vocab); err != nil {
		s.Error = "impossible value: " + err.Error()
	}
	return s
}

func (r *Runner) progress(format string, args ...any) {
	if r.Progress != nil {
		fmt.Fprintf(r.Progress, format+"\n", args...)
	}
}

type trial struct {
	r     *Runner
	name  string // the variant's
	ksm   bool   // the variant runs with host.ksm=on
	storm bool   // the instances start all at once, as a start storm
	d     drivers.Driver
	w     scenarios.Workload
	n     int
	rep   int
	out   *results.Outcome

	// parent is the run's context: once it is done, failed measurements
	// are the interruption's, not the instances'.
	parent context.Context

	mu       sync.Mutex
	storeErr error
	// cost is the most one instance took in this trial: memory (its PSS
	// or the MemAvailable drop per instance, whichever is larger), tasks
	// and writable disk.
	cost cost
	// excluded says the trial's samples are not to be summarised (exclude).
	excluded bool
	// deciding are the values of the trial's deciding figures (decides),
	// which reps: auto judges.
	deciding map[string][]float64
}

// decides reports whether metric is one of the figures that decide, under
// reps: auto, how often a trial repeats: an idle instance's start (the
// baseline workload's), a workload's speeds, a storm's rate.
func (t *trial) decides(metric string) bool {
	switch {
	case t.storm:
		return metric == results.MetricStormRate
	case metric == results.MetricStartup:
		return t.r.vocab.BaselineWorkload(t.w.Name)
	}
	return t.r.vocab.Kind(metric).Speed()
}

// record stores a sample with the trial's coordinates filled in. A
// measurement that failed because the run was interrupted is kept, marked
// so, and not counted among the failures: the instance did not fail.
func (t *trial) record(s results.Sample) {
	s.Time = time.Now().UTC()
	s.Variant, s.Workload, s.Instances = t.name, t.w.Name, t.n
	s.Rep, s.Warmup = t.rep, t.rep < 0
	s = t.r.checked(s)
	if !s.Failed() && t.decides(s.Metric) {
		t.mu.Lock()
		if t.deciding == nil {
			t.deciding = map[string][]float64{}
		}
		t.deciding[s.Metric] = append(t.deciding[s.Metric], s.Value)
		t.mu.Unlock()
	}
	if s.Failed() && t.parent != nil && t.parent.Err() != nil {
		s.Error = results.InterruptedPrefix + s.Error
	} else if s.Failed() {
		t.mu.Lock()
		t.out.FailureCount++
		if len(t.out.Failures) < results.MaxFailureLines {
			t.out.Failures = append(t.out.Failures, fmt.Sprintf("%s %s ×%d rep %d %s: %s", s.Variant, s.Workload, s.Instances, s.Rep, s.Metric, s.Error))
		}
		t.mu.Unlock()
	}
	if err := t.r.Sink(s); err != nil {
		t.mu.Lock()
		t.storeErr = errors.Join(t.storeErr, err)
		t.mu.Unlock()
	}
}

type started struct {
	inst  drivers.Instance
	id    string
	ready drivers.Readiness
	err   error
}

// run runs one trial and returns its progress line. Only storage errors
// and interruption are returned; instance failures become failed samples.
func (t *trial) run(parent context.Context) (string, error) {
	t.parent = parent
	begin := time.Now()
	sc := t.r.Scenario
	ctx, cancel := context.WithTimeout(parent, sc.Timeout)
	defer cancel()
	memBefore := t.memBefore(ctx)
	insts := make([]*started, t.n)
	count := "n"
	if t.storm {
		count = "s"
	}
	for i := range insts {
		insts[i] = &started{id: fmt.Sprintf("%s-%s-%s%d-r%d-i%d", t.name, t.w.Name, count, t.n, t.rep+sc.Warmup, i)}
	}
	if t.ksm {
		if err := t.r.ksm.enable(); err != nil {
			return "", err
		}
		// After the instances stopped (deferred below, so run first).
		defer func() {
			if err := t.r.ksm.restore(); err != nil {
				t.record(results.Sample{Metric: results.MetricKSMSharing, Unit: "pages", Error: "putting KSM back: " + err.Error()})
			}
		}()
	}
	// Every started instance is stopped, whatever happens from here on.
	defer t.stopAll(insts)
	for _, st := range t.steps(memBefore) {
		st.run(ctx, insts)
		if err := parent.Err(); err != nil {
			return "", fmt.Errorf("trial step %s: %w", st.name, err)
		}
	}
	if why := t.r.dog.stalledReason(begin, time.Now()); why != "" {
		t.exclude(why)
	}
	t.mu.Lock()
	err := t.storeErr
	t.mu.Unlock()
	return t.summaryLine(insts), err
}

// trialStep is one named measuring step of a trial, run on its
// instances; what it measures it records as samples, failures included.
type trialStep struct {
	name string
	run  func(ctx context.Context, insts []*started)
}

// steps are a trial's measuring steps, in order: start the instances, let
// them settle (reading their idle CPU and tasks), let KSM merge where it
// is on, sample their memory, drive load over their network (the
// workload's load profile, where it has one, at every instance at once),
// collect the workload's results, exclude the trial if an instance
// exited, measure their writable disk, and stop them.
func (t *trial) steps(memBefore int64) []trialStep {
	if t.storm {
		return t.stormSteps(memBefore)
	}
	w, _ := guest.Lookup(t.w.Agent())
	steps := []trialStep{
		{"start", func(ctx context.Context, insts []*started) {
			t.startParallel(ctx, insts, runtime.NumCPU(), results.MetricStartup)
		}},
		{"settle", t.settle},
	}
	if t.ksm {
		steps = append(steps, trialStep{"ksm", t.settleKSM})
	}
	steps = append(steps, trialStep{"memory", func(ctx context.Context, insts []*started) { t.sampleMemory(ctx, insts, memBefore) }})
	switch {
	case t.w.Load != nil:
		steps = append(steps, trialStep{"load", t.loadProfile})
	case w.Network && (t.w.Service == nil || t.w.Service.Ready.HTTP != ""):
		// A service's load is HTTP at its readiness path.
		steps = append(steps, trialStep{"network", t.loadAll})
	}
	if !w.Server {
		steps = append(steps, trialStep{"results", t.collectAll})
	}
	return append(steps,
		trialStep{"exits", func(_ context.Context, insts []*started) {
			if why := exitedDuring(insts); why != "" {
				t.exclude(why)
			}
		}},
		trialStep{"writable disk", func(_ context.Context, insts []*started) { t.sampleWritable(insts) }},
		trialStep{"stop", func(_ context.Context, insts []*started) { t.stopAll(insts) }},
	)
}

// memBefore reads the host's MemAvailable before the trial's instances
// start, settled where several start and the scenario settles; then it
// idles the scenario's pause.
func (t *trial) memBefore(ctx context.Context) int64 {
	h := t.r.host()
	sc := t.r.Scenario
	var m int64
	if t.n > 1 && sc.Settle > 0 {
		m, _ = settledMemAvailable(ctx, h, SettleLimit)
	} else {
		m, _ = stableMemAvailable(ctx, h)
	}
	if sc.Pause > 0 {
		select {
		case <-time.After(sc.Pause):
		case <-ctx.Done():
		}
	}
	return m
}

// loadAll drives the host's load at every instance that started.
//
// A load that fails may have failed because its server died: the
// instance is then given ExitGrace to show its exit, so that the next
// step excludes the trial for it rather than count a broken server as
// measured.
func (t *trial) loadAll(ctx context.Context, insts []*started) {
	for _, st := range insts {
		if st.err != nil {
			continue
		}
		lctx, stop := whileRunning(ctx, st)
		failed := t.loadNet(lctx, st)
		stop()
		if ex, ok := st.inst.(drivers.Exiter); ok && failed {
			select {
			case <-ex.Exited():
			case <-time.After(ExitGrace):
			case <-ctx.Done():
			}
		}
	}
}

// ExitGrace is how long an instance whose load failed is given to show
// that its server died: the agent exits within moments of its server.
const ExitGrace = 2 * time.Second

// whileRunning returns a context that ends with ctx or when st's instance
// exits (drivers.Exiter): a load generator that would wait for a server
// that is gone (redis-benchmark spins until its bound) stops with it, and
// the trial is excluded for the exit.
func whileRunning(ctx context.Context, st *started) (context.Context, func()) {
	ex, ok := st.inst.(drivers.Exiter)
	if !ok {
		return ctx, func() {}
	}
	lctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-ex.Exited():
			cancel()
		case <-lctx.Done():
		}
	}()
	return lctx, cancel
}

// collectAll collects every started instance's results, at once.
func (t *trial) collectAll(ctx context.Context, insts []*started) {
	var wg sync.WaitGroup
	for _, st := range insts {
		if st.err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.collect(ctx, st)
		}()
	}
	wg.Wait()
}

// exclude records that the trial's samples, kept, must not be summarised
// (results.MetricTrialExcluded), and why: a failure of the trial. What it
// cost is not the instances' ordinary cost, so the guards do not learn it.
func (t *trial) exclude(why string) {
	t.excluded = true
	t.record(results.Sample{Metric: results.MetricTrialExcluded, Error: why})
}

// exitedDuring says which started instance exited before the trial
// stopped it (killed from outside: its process's exit was seen), and how;
// "" when none did.
func exitedDuring(insts []*started) string {
	for _, st := range insts {
		if why := exitCause(st); why != "" {
			return why
		}
	}
	return ""
}

// exitCause says how a started instance exited before the trial stopped
// it, or "" while it runs (or cannot tell).
func exitCause(st *started) string {
	if st.err != nil {
		return ""
	}
	if ex, ok := st.inst.(drivers.Exiter); ok {
		select {
		case <-ex.Exited():
			return fmt.Sprintf("instance %s exited during the trial (%v)", st.id, ex.ExitErr())
		default:
		}
	}
	return ""
}

// startInstance starts one instance, waits for READY and records its
// startup (as metric) and phases.
func (t *trial) startInstance(ctx context.Context, st *started, metric string) {
	sc := t.r.Scenario
	spec := drivers.Spec{ID: st.id, Workload: t.w.Agent(), Args: t.w.Args, MemoryBytes: sc.MemoryBytes}
	if svc := t.r.services[t.w.Name]; svc != nil {
		spec.Args, spec.Image, spec.Process = svc.proc.AgentArgs(), &svc.img, &svc.proc
	}
	inst, err := t.d.Start(ctx, spec)
	if err != nil {
		st.err = err
		if ctx.Err() == nil {
			t.record(results.Sample{Instance: st.id, Metric: metric, Unit: "sec", Error: "start: " + err.Error()})
		}
		return
	}
	st.inst = inst
	rd, err := inst.Ready(ctx)
	if err != nil {
		st.err = err
		if ctx.Err() == nil || !errors.Is(err, context.Canceled) {
			t.record(results.Sample{Instance: st.id, Metric: metric, Unit: "sec", Error: err.Error()})
		}
		return
	}
	rd.Labels = kernelLabels(rd)
	// A service's start ends at the host's first successful probe, after
	// the agent's READY (agentAt), when it execs the service.
	agentAt := rd.At
	if svc := t.w.Service; svc != nil {
		if rd.At, err = probeService(ctx, inst, svc); err != nil {
			st.err = err
			if ctx.Err() == nil || !errors.Is(err, context.Canceled) {
				t.record(results.Sample{Instance: st.id, Metric: metric, Unit: "sec", Error: "service: " + err.Error()})
			}
			return
		}
	}
	if t.ksm {
		rd.Labels = maps.Clone(rd.Labels)
		if rd.Labels == nil {
			rd.Labels = map[string]string{}
		}
		rd.Labels[results.LabelKSM] = "on"
	}
	st.ready = rd
	t.record(results.Sample{Instance: st.id, Metric: metric, Unit: "sec", Value: rd.Startup().Seconds(), Labels: rd.Labels})
	prev := rd.Begin
	for _, ph := range rd.Phases {
		t.record(results.Sample{Instance: st.id, Metric: results.PhaseMetricPrefix + ph.Name, Unit: "sec", Value: ph.At.Sub(prev).Seconds(), Labels: rd.Labels})
		prev = ph.At
	}
	if len(rd.Phases) > 0 {
		// The agent's phase is what the start's stages leave: a VM's guest
		// boot, measured on its vCPU's clock, is a stage of its own.
		agent := max(agentAt.Sub(prev)-rd.GuestBoot, 0)
		t.record(results.Sample{Instance: st.id, Metric: results.PhaseMetricPrefix + results.PhaseAgent, Unit: "sec", Value: agent.Seconds(), Labels: rd.Labels})
	}
	if t.w.Service != nil {
		t.record(results.Sample{Instance: st.id, Metric: results.PhaseMetricPrefix + results.PhaseService, Unit: "sec", Value: rd.At.Sub(agentAt).Seconds(), Labels: rd.Labels})
	}
	if rd.GuestBoot > 0 {
		t.record(results.Sample{Instance: st.id, Metric: results.MetricGuestBoot, Unit: "sec", Value: rd.GuestBoot.Seconds(), Labels: rd.Labels})
		// The boot's stages, placed on the vCPU's time line: the kernel's
		// clock reads 0 at the vCPU time GuestBoot - UptimeSec.
		offset := rd.GuestBoot.Seconds() - rd.Guest.UptimeSec
		for _, m := range rd.Guest.Boot {
			t.record(results.Sample{Instance: st.id, Metric: results.BootMetricPrefix + m.Name, Unit: "sec", Value: offset + m.Sec, Labels: rd.Labels})
		}
		if rd.Guest.UptimeSec > 0 {
			t.record(results.Sample{Instance: st.id, Metric: results.MetricGuestUptime, Unit: "sec", Value: rd.Guest.UptimeSec, Labels: rd.Labels})
		}
	}
	if len(rd.Labels) > 0 {
		t.mu.Lock()
		t.out.Labels[t.name] = rd.Labels
		vr := t.out.Variants[t.name]
		vr.Role.Observe(t.r.vocab, rd.Labels)
		t.out.Variants[t.name] = vr
		t.mu.Unlock()
	}
}

// kernelLabels returns rd's labels with the instance's own kernel added
// where the agent reported one: results.LabelGuestKernel (its release) and
// results.LabelMitigations (its CPU vulnerability mitigations, guest.Mitigations),
// to set beside the host's in the provenance.
func kernelLabels(rd drivers.Readiness) map[string]string {
	if rd.Guest.Kernel == "" && rd.Guest.Mitigations == "" {
		return rd.Labels
	}
	l := map[string]string{results.LabelGuestKernel: rd.Guest.Kernel, results.LabelMitigations: rd.Guest.Mitigations}
	for k, v := range rd.Labels {
		l[k] = v
	}
	return l
}

func (t *trial) sampleMemory(ctx context.Context, insts []*started, memBefore int64) {
	running := 0
	use := sampleInstances(ctx, insts, true)
	for _, st := range insts {
		if st.err != nil {
			continue
		}
		running++
		m, err := use[st].mem, use[st].memErr
		if _, sampled := use[st]; !sampled {
			err = ctx.Err()
		}
		if err != nil {
			if why := exitCause(st); why != "" {
				err = fmt.Errorf("%s: %w", why, err)
			}
			t.record(results.Sample{Instance: st.id, Metric: results.MetricPSS, Unit: "B", Error: err.Error()})
			continue
		}
		t.cost.memory = max(t.cost.memory, float64(m.PSS))
		t.record(results.Sample{Instance: st.id, Metric: results.MetricRSS, Unit: "B", Value: float64(m.RSS)})
		t.record(results.Sample{Instance: st.id, Metric: results.MetricPSS, Unit: "B", Value: float64(m.PSS)})
		t.record(results.Sample{Instance: st.id, Metric: results.MetricUSS, Unit: "B", Value: float64(m.USS)})
		if m.PSSAnon > 0 {
			t.record(results.Sample{Instance: st.id, Metric: results.MetricPSSAnon, Unit: "B", Value: float64(m.PSSAnon)})
			t.record(results.Sample{Instance: st.id, Metric: results.MetricPSSOwn, Unit: "B", Value: float64(m.PSSAnon + m.PSSShmem)})
		}
		if mp, ok := st.inst.(drivers.MemoryParter); ok {
			parts, err := mp.MemoryParts()
			if err != nil {
				t.record(results.Sample{Instance: st.id, Metric: results.MetricMemParts, Unit: "B", Error: err.Error()})
			}
			names := make([]string, 0, len(parts))
			for k := range parts {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				t.record(results.Sample{Instance: st.id, Metric: results.MemPartPrefix + k, Unit: "B", Value: float64(parts[k])})
			}
		}
		if cg, ok := st.inst.(drivers.Cgrouper); ok {
			if v, err := cg.CgroupMemoryBytes(); err == nil {
				t.record(results.Sample{Instance: st.id, Metric: results.MetricCgroupMem, Unit: "B", Value: float64(v)})
			}
		}
	}
	t.sampleDaemons(ctx)
	if memBefore > 0 {
		t.record(results.Sample{Metric: results.MetricHostMemAvailable, Unit: "B", Value: float64(memBefore)})
	}
	if memAfter, err := stableMemAvailable(ctx, t.r.host()); err == nil && running > 0 && memBefore > 0 {
		drop := float64(memBefore-memAfter) / float64(running)
		t.cost.memory = max(t.cost.memory, drop)
		t.record(results.Sample{Metric: results.MetricHostMemDrop, Unit: "B", Value: drop})
	}
}

// sampleDaemons records the memory of the driver's daemons
// (drivers.Daemoner), with its instances up; a driver that names none
// records nothing.
func (t *trial) sampleDaemons(ctx context.Context) {
	dm, ok := t.d.(drivers.Daemoner)
	if !ok {
		return
	}
	s := results.Sample{Metric: results.MetricDaemonPSS, Unit: "B"}
	pids, err := dm.Daemons()
	if err == nil && len(pids) == 0 {
		return
	}
	var m Memory
	if err == nil {
		m, err = MemoryOf(ctx, pids)
	}
	if err != nil {
		s.Error = err.Error()
	} else {
		s.Value = float64(m.PSS)
	}
	t.record(s)
}

// settle waits the scenario's settle time after READY. For an idle
// workload, when that is at least MinCPUWindow, it instead measures what
// each instance costs the host while it idles, once settled (settledCPU,
// over idleCPUWindow): the CPU its processes use (MetricIdleCPU, in
// cores) and the tasks they hold (MetricTasks).
func (t *trial) settle(ctx context.Context, insts []*started) {
	window := t.r.Scenario.Settle
	gw, _ := guest.Lookup(t.w.Agent())
	if gw.Idle && window >= MinCPUWindow {
		u, settled, err := settledCPU(ctx, t.r.host(), insts, idleCPUWindow(window))
		if err != nil {
			return
		}
		t.record(results.Sample{Metric: results.MetricIdleSettle, Unit: "sec", Value: settled.Seconds()})
		for _, st := range insts {
			if c, ok := u.cores[st]; ok {
				t.record(results.Sample{Instance: st.id, Metric: results.MetricIdleCPU, Unit: "cores", Value: c})
			}
		}
		t.recordTasks(insts, u.tasks)
		return
	}
	if window > 0 {
		select {
		case <-time.After(window):
		case <-ctx.Done():
			return
		}
	}
	if gw.Idle {
		tasks := map[*started]int{}
		for st, u := range sampleInstances(ctx, insts, false) {
			if u.procErr == nil {
				tasks[st] = u.proc.Tasks
			}
		}
		t.recordTasks(insts, tasks)
	}
}

// recordTasks records the tasks each instance holds.
func (t *trial) recordTasks(insts []*started, tasks map[*started]int) {
	for _, st := range insts {
		n, ok := tasks[st]
		if !ok {
			continue
		}
		t.cost.tasks = max(t.cost.tasks, float64(n))
		t.record(results.Sample{Instance: st.id, Metric: results.MetricTasks, Unit: "tasks", Value: float64(n)})
	}
}

// sampleWritable records the size of each instance's writable layer after
// its workload ran.
func (t *trial) sampleWritable(insts []*started) {
	for _, st := range insts {
		ws, ok := st.inst.(drivers.WritableSizer)
		if st.err != nil || !ok {
			continue
		}
		u, err := ws.WritableUsage()
		if errors.Is(err, drivers.ErrNotApplicable) {
			continue
		}
		if err != nil {
			t.record(results.Sample{Instance: st.id, Metric: results.MetricWritableAllocated, Unit: "B", Error: err.Error()})
			continue
		}
		t.cost.disk = max(t.cost.disk, float64(u.Allocated))
		t.record(results.Sample{Instance: st.id, Metric: results.MetricWritableApparent, Unit: "B", Value: float64(u.Apparent)})
		t.record(results.Sample{Instance: st.id, Metric: results.MetricWritableAllocated, Unit: "B", Value: float64(u.Allocated)})
	}
}

// collect records the RESULT lines of one instance until DONE.
func (t *trial) collect(ctx context.Context, st *started) {
	var exited <-chan struct{}
	if e, ok := st.inst.(drivers.Exiter); ok {
		exited = e.Exited()
	}
	fail := func(msg string) {
		t.record(results.Sample{Instance: st.id, Metric: t.w.Name, Unit: "", Error: msg})
	}
	for {
		select {
		case m, ok := <-st.inst.Output():
			if !ok {
				fail("console closed before DONE")
				return
			}
			switch m.Kind {
			case guest.KindResult:
				s := results.Sample{Instance: st.id, Metric: m.Result.Name, Unit: m.Result.Unit, Value: m.Result.Value, Labels: st.ready.Labels}
				if m.Result.Unmeasured != "" {
					s.Value, s.Error = 0, "not measured: "+m.Result.Unmeasured
				}
				t.record(s)
			case guest.KindError:
				fail("workload: " + m.Error.Msg)
				return
			case guest.KindDone:
				return
			}
		case <-exited:
			// Drain what is left on the console; Output closes at EOF.
			exited = nil
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				fail(fmt.Sprintf("no DONE within the trial timeout %v", t.r.Scenario.Timeout))
			}
			return
		}
	}
}

// StopsPerCPU bounds how many instances stop at once, per host CPU: a
// stop is mostly the kernel's work (the exit of the instance's processes,
// its namespaces, mounts and cgroup), so more at once would only queue in
// the kernel and inflate each stop's time, while a few per CPU keep the
// CPUs busy while some stops wait on a process's exit.
const StopsPerCPU = 4

// stopAll stops every started instance, StopsPerCPU per host CPU at once,
// records each one's teardown, and returns how many it stopped and how
// long that took in all.
func (t *trial) stopAll(insts []*started) (int, time.Duration) {
	begin := time.Now()
	work := make(chan *started)
	var wg sync.WaitGroup
	for range min(StopsPerCPU*runtime.NumCPU(), len(insts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for st := range work {
				t.stop(st)
			}
		}()
	}
	n := 0
	for _, st := range insts {
		if st.inst != nil {
			work <- st
			n++
		}
	}
	close(work)
	wg.Wait()
	return n, time.Since(begin)
}

// stop stops one instance within StopTimeout (at once on a second
// interrupt) and records its teardown.
func (t *trial) stop(st *started) {
	inst := st.inst
	st.inst = nil
	ctx, cancel := context.WithTimeout(context.Background(), StopTimeout)
	defer cancel()
	if t.r.Kill != nil {
		go func() {
			select {
			case <-t.r.Kill:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	begin := time.Now()
	if err := inst.Stop(ctx); err != nil {
		t.record(results.Sample{Instance: st.id, Metric: results.MetricTeardown, Unit: "sec", Error: err.Error()})
		return
	}
	if st.err == nil {
		t.record(results.Sample{Instance: st.id, Metric: results.MetricTeardown, Unit: "sec", Value: time.Since(begin).Seconds()})
	}
}

func (t *trial) summaryLine(insts []*started) string {
	var ups []time.Duration
	failed := 0
	for _, st := range insts {
		if st.err != nil {
			failed++
			continue
		}
		ups = append(ups, st.ready.Startup())
	}
	sort.Slice(ups, func(i, j int) bool { return ups[i] < ups[j] })
	kind := "rep"
	rep := t.rep + 1
	if t.rep < 0 {
		kind, rep = "warmup", t.rep+t.r.Scenario.Warmup+1
	}
	var b strings.Builder
	count := fmt.Sprintf("×%d", t.n)
	if t.storm {
		count = fmt.Sprintf("storm of %d", t.n)
	}
	fmt.Fprintf(&b, "%s %s %s %s %d", t.name, t.w.Name, count, kind, rep)
	if len(ups) > 0 {
		fmt.Fprintf(&b, ": startup %v", ups[len(ups)/2].Round(10*time.Microsecond))
	}
	if rates := t.deciding[results.MetricStormRate]; len(rates) > 0 {
		fmt.Fprintf(&b, ", %.4g READY per second", rates[0])
	}
	if failed > 0 {
		fmt.Fprintf(&b, ", %d failed", failed)
		for _, st := range insts {
			if st.err != nil {
				fmt.Fprintf(&b, " (%v)", st.err)
				break
			}
		}
	}
	return b.String()
}
