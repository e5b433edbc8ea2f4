package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"virtbench/drivers"
	"virtbench/internal/cgroups"
	"virtbench/internal/loadgen"
	"virtbench/internal/results"
)

// loadProfile is the trial step of a workload with a load profile
// (scenarios.Workload.Load): sendLoad, then a progress line on how the
// windows went.
func (t *trial) loadProfile(ctx context.Context, insts []*started) {
	v := t.sendLoad(ctx, insts)
	t.r.progress("%s", v.line(*t.w.Load))
}

// stepVerdict is how every instance's window of one load went against
// the objective.
type stepVerdict struct {
	// judged and met count the windows judged and those that met the
	// objective; weak says a window had too few requests for its p99.
	judged, met int
	weak        bool
	// bound and why are what failed first in the first window that
	// failed (loadgen.Verdict), with the instance's name in why.
	bound, why string
	// busy is the host's busy CPU share during the load.
	busy float64
}

// pass reports whether every window met the objective, on enough
// requests.
func (v stepVerdict) pass() bool { return v.judged > 0 && v.met == v.judged && !v.weak }

// sendLoad sends the workload's load profile to every instance that
// started, all at once, over each one's network path, and records each
// window (achieved rate, latencies, errors, whether it met the
// objective), the host's CPU during the load and virtbench's own, the
// generator's. An instance with no network path gets a failed sample that
// says so, and fails the objective.
func (t *trial) sendLoad(ctx context.Context, insts []*started) stepVerdict {
	p, path := *t.w.Load, t.w.HTTPPath()
	h := t.r.host()
	busy0, total0, hostErr := h.CPUTimes(ctx)
	gens := t.r.newGenerators()
	defer gens.close()
	begin := time.Now()
	var wg sync.WaitGroup
	verdicts := make([]*loadgen.Verdict, len(insts))
	for i, st := range insts {
		if st.err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			lctx, stop := whileRunning(ctx, st)
			defer stop()
			verdicts[i] = t.loadOne(lctx, gens, st, path, p)
		}()
	}
	wg.Wait()
	var sv stepVerdict
	gens.record(t, time.Since(begin))
	if busy1, total1, err := h.CPUTimes(ctx); hostErr == nil && err == nil {
		sv.busy = busyFraction(busy0, total0, busy1, total1)
		t.record(results.Sample{Metric: results.MetricLoadHostCPU, Unit: "%", Value: 100 * sv.busy})
	}
	for i, v := range verdicts {
		if v == nil {
			continue
		}
		sv.judged++
		sv.weak = sv.weak || v.Weak
		if v.Met {
			sv.met++
		} else if sv.why == "" {
			sv.bound, sv.why = v.Bound, insts[i].id+": "+v.Why
		}
	}
	return sv
}

// line says how the instances' windows went against the objective: how
// many met it, and what failed first where one did not.
func (v stepVerdict) line(p loadgen.Profile) string {
	line := fmt.Sprintf("load %.0f/s per instance for %v, host CPU %.0f%%", p.Rate, p.Duration, 100*v.busy)
	if p.SLO == nil || v.judged == 0 {
		return line
	}
	line += fmt.Sprintf(": %d of %d instances met the objective (p99 <= %v, errors <= %.2f%%)", v.met, v.judged, p.SLO.P99, 100*p.SLO.Errors)
	if v.weak {
		line += fmt.Sprintf("; weak: fewer than %d requests per instance", loadgen.MinRequestsForP99)
	}
	if v.why != "" {
		line += "; first failure " + v.why
	}
	return line
}

// loadOne sends p to one instance and records its window; with an
// objective, it returns the window's verdict.
func (t *trial) loadOne(ctx context.Context, gens *generators, st *started, path string, p loadgen.Profile) *loadgen.Verdict {
	fail := func(why string) *loadgen.Verdict {
		t.record(results.Sample{Instance: st.id, Metric: results.MetricLoadAchieved, Unit: "op/s", Error: why})
		return &loadgen.Verdict{Bound: loadgen.BoundErrors, Why: why}
	}
	pr, ok := st.inst.(drivers.PeerRunner)
	if !ok {
		return fail(fmt.Sprintf("%s gives host programs no network path to its instances", t.d.Name()))
	}
	port, err := t.port(st)
	if err != nil {
		return fail(err.Error())
	}
	addr, err := pr.PeerAddr(port)
	if errors.Is(err, drivers.ErrNotApplicable) {
		return fail("the instance has no network path from the host (its driver's network option is none; veth or tap gives it one)")
	}
	if err != nil {
		return fail(err.Error())
	}
	r, err := gens.run(ctx, pr, loadgen.Job{Addr: addr, Path: path, Profile: p})
	if err != nil {
		return fail(err.Error())
	}
	for _, s := range []results.Sample{
		{Metric: results.MetricLoadAchieved, Unit: "op/s", Value: r.Achieved},
		{Metric: results.MetricLoadP50, Unit: "sec", Value: r.P50.Seconds()},
		{Metric: results.MetricLoadP99, Unit: "sec", Value: r.P99.Seconds()},
		{Metric: results.MetricLoadP999, Unit: "sec", Value: r.P999.Seconds()},
		{Metric: results.MetricLoadErrors, Unit: "%", Value: 100 * r.Errors},
		{Metric: results.MetricLoadRequests, Unit: "requests", Value: float64(r.Requests)},
	} {
		s.Instance = st.id
		t.record(s)
	}
	if p.SLO == nil {
		return nil
	}
	v := p.SLO.Judge(r, p.Rate)
	met := 0.0
	if v.Met {
		met = 100
	}
	t.record(results.Sample{Instance: st.id, Metric: results.MetricLoadSLOMet, Unit: "%", Value: met})
	return &v
}

// generators are the load generator processes of one load, one per
// instance, each started where the instance's network path begins
// (drivers.PeerRunner) from virtbench's own binary (loadgen.Child), and
// held together in a cgroup of their own beneath virtbench's, so that
// what they take of the host is theirs, apart from virtbench and from
// the instances: their CPU and their memory, each process's own as the
// kernel accounts it at its exit (a cgroup joined after the start would
// not be charged the pages allocated before).
type generators struct {
	// self is the binary they run (virtbench's own, or the test binary),
	// or selfErr why it is unknown.
	self    string
	selfErr error
	// cg is their cgroup, or nil where none could be made (not root, no
	// cgroups): they then run in virtbench's.
	cg *cgroups.Cgroup

	mu      sync.Mutex
	cpu     time.Duration // the CPU time of those that exited
	rss     int64         // the sum of their largest resident sets
	started int
}

// newGenerators prepares the generators of one load: the binary they
// run, and their cgroup, virtbench.RUN/loadgen-N beside the instances'
// (N counts the run's loads).
func (r *Runner) newGenerators() *generators {
	g := &generators{}
	g.self, g.selfErr = os.Executable()
	if p, err := cgroups.NewPlanner(filepath.Base(r.Env.StateDir)); err == nil {
		g.cg, _ = cgroups.Create(p.Plan(fmt.Sprintf("loadgen-%d", r.loads.Add(1))), cgroups.Limits{})
	}
	return g
}

// run runs job in a generator process of its own at pr's end of the
// instance's network path and returns its report.
func (g *generators) run(ctx context.Context, pr drivers.PeerRunner, job loadgen.Job) (loadgen.Report, error) {
	if g.selfErr != nil {
		return loadgen.Report{}, fmt.Errorf("bench: the load generator: %w", g.selfErr)
	}
	in, err := json.Marshal(job)
	if err != nil {
		return loadgen.Report{}, err
	}
	cmd := exec.CommandContext(ctx, g.self, loadgen.ChildArg)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := pr.StartAtPeer(cmd); err != nil {
		return loadgen.Report{}, fmt.Errorf("bench: starting the load generator: %w", err)
	}
	if g.cg != nil {
		if err := g.cg.Add(cmd.Process.Pid); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return loadgen.Report{}, fmt.Errorf("bench: the load generator's cgroup: %w", err)
		}
	}
	werr := cmd.Wait()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		g.mu.Lock()
		g.cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		g.rss += ru.Maxrss << 10
		g.started++
		g.mu.Unlock()
	}
	if werr != nil {
		return loadgen.Report{}, fmt.Errorf("the load generator: %v: %s", werr, strings.TrimSpace(errOut.String()))
	}
	var r loadgen.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return loadgen.Report{}, fmt.Errorf("the load generator's report: %w", err)
	}
	return r, nil
}

// record records what the generators took over the load's wall time
// took: their CPU in cores, and their memory, the sum of each one's
// largest resident set (at most what they held at once).
func (g *generators) record(t *trial, took time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started == 0 || took <= 0 {
		return
	}
	t.record(results.Sample{Metric: results.MetricLoadGenCPU, Unit: "cores", Value: g.cpu.Seconds() / took.Seconds()})
	t.record(results.Sample{Metric: results.MetricLoadGenMemory, Unit: "B", Value: float64(g.rss)})
}

// close removes the generators' cgroup, once they have exited.
func (g *generators) close() {
	if g.cg != nil {
		g.cg.Remove()
	}
}
