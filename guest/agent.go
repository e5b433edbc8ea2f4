package guest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"virtbench/internal/measure"
	"virtbench/internal/tools"
)

// Agent writes protocol messages to the console. It is safe for concurrent use.
type Agent struct {
	mu    sync.Mutex
	w     io.Writer
	nonce Nonce
	vm    bool
	marks []Milestone // see Mark
	steps []Milestone // see Step
	// restored is set, with the template's kernel, by Restored.
	restored *Kernel
}

// Mark records a stage of the agent's own setup inside a VM (its modules,
// disk and NIC ready) at the kernel's uptime; READY carries it among the
// boot's milestones.
func (a *Agent) Mark(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.marks = append(a.marks, Milestone{Name: name, Sec: Uptime()})
}

// Step records that a stage of a container init's setup ended now, on
// CLOCK_MONOTONIC, which a container shares with its host: READY carries
// the steps in Setup, and the host places them on its own time line.
func (a *Agent) Step(name string) {
	now := Monotonic()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.steps = append(a.steps, Milestone{Name: name, Sec: now})
}

// Restored tells a VM's agent that its VM was restored from a snapshot:
// its kernel is the template's, which k describes (read before the save,
// as ReadKernel), and its boot, vCPU clock and kernel log are the
// template's too, so READY carries k and none of those. steps ended before
// the agent existed, on the guest's CLOCK_MONOTONIC: READY carries them in
// Setup, with MonoSec for the host to place them by.
func (a *Agent) Restored(k Kernel, steps []Milestone) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.restored = &k
	a.steps = append(a.steps, steps...)
}

// Monotonic returns CLOCK_MONOTONIC in seconds.
func Monotonic() float64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

// NewAgent returns an agent that writes to w, marking its lines with n.
func NewAgent(w io.Writer, n Nonce) *Agent { return &Agent{w: w, nonce: n} }

// NewVMAgent returns an agent that writes to w from inside a VM, marking
// its lines with n: its READY also carries VCPUSeconds.
func NewVMAgent(w io.Writer, n Nonce) *Agent { return &Agent{w: w, nonce: n, vm: true} }

// CheckNonce reports whether the agent's nonce is one the host could have
// made: anything else (a newline in it, say) could break its lines.
func (a *Agent) CheckNonce() error {
	if !a.nonce.Valid() {
		return fmt.Errorf("the nonce %q (%s) is not 16 lowercase hex digits", a.nonce, NonceEnv)
	}
	return nil
}

func (a *Agent) emit(kind Kind, payload any) {
	line := a.nonce.Format(kind, payload)
	a.mu.Lock()
	defer a.mu.Unlock()
	// A console that cannot be written has no reader left; nothing to report to.
	_, _ = a.w.Write(line)
}

// Ready announces that the workload can accept work. UptimeSec is filled
// in; inside a VM also VCPUSec; inside a VM or with KernelInfoEnv set, the
// kernel's release and mitigations (read after the clocks, about 20 small
// sysfs files).
// A restored VM's agent reports its template's kernel (Restored).
func (a *Agent) Ready(r Ready) {
	r.UptimeSec = Uptime()
	a.mu.Lock()
	restored, marks := a.restored, a.marks
	r.Setup = a.steps
	a.mu.Unlock()
	if a.vm && restored == nil {
		r.VCPUSec = VCPUSeconds()
	}
	switch {
	case restored != nil:
		r.Kernel, r.Mitigations = restored.Release, restored.Mitigations
	case a.vm || os.Getenv(KernelInfoEnv) != "":
		k := ReadKernel()
		r.Kernel, r.Mitigations = k.Release, k.Mitigations
	}
	if a.vm && restored == nil {
		r.Boot = append(BootMilestones(readKmsg()), marks...)
	}
	if len(r.Setup) > 0 {
		r.MonoSec = Monotonic()
	}
	a.emit(KindReady, r)
}

// Result reports one measured value.
func (a *Agent) Result(name string, value float64, unit string) {
	a.emit(KindResult, Result{Name: name, Value: value, Unit: unit})
}

// Unmeasured reports that the result name could not be measured, and why.
func (a *Agent) Unmeasured(name, unit, why string) {
	a.emit(KindResult, Result{Name: name, Unit: unit, Unmeasured: why})
}

// Detail reports one value with explanatory text.
func (a *Agent) Detail(name string, value float64, unit, detail string) {
	a.emit(KindResult, Result{Name: name, Value: value, Unit: unit, Detail: detail})
}

// Done announces that the workload has reported all its results.
func (a *Agent) Done() { a.emit(KindDone, nil) }

// Error reports a failure.
func (a *Agent) Error(err error) { a.emit(KindError, Error{Msg: err.Error()}) }

// Uptime returns the system uptime in seconds from /proc/uptime, or 0 when it
// cannot be read.
func Uptime() float64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f, _, _ := strings.Cut(string(b), " ")
	v, err := strconv.ParseFloat(f, 64)
	if err != nil {
		return 0
	}
	return v
}

// Workload describes one workload of the agent.
type Workload struct {
	Name    string
	Summary string
	// Server workloads announce READY themselves (once they accept
	// connections) and run until stopped; the others get READY before they
	// start and DONE after their last result.
	Server bool
	// Command workloads take a command after their flags (the service's).
	Command bool
	// Idle workloads hold their resources without working once ready (a
	// server waits for requests): what an instance costs a host while it
	// idles (CPU, tasks) is measured on them.
	Idle bool
	// Network workloads serve over the network: the host drives load at
	// them over the instance's network path (drivers.Dialer).
	Network bool
	// HTTPPath, for a workload that serves HTTP, is the path a request
	// gets a 200 from: a scenario's load profile sends its requests there.
	HTTPPath string
	// Disk workloads read and write files on a disk of the instance's own
	// (a VM's attached disk; a container's writable layer), not a tmpfs.
	Disk bool
	// Files workloads read files of the instance's own file system as
	// they work: every Disk workload, and a server of a file it wrote
	// (nginx), wherever the file system lies.
	Files bool
	// Measures are the results the workload reports, in the order it
	// reports them; a test workload (probe) declares none.
	Measures []Measure
	// HostMeasures are the results of a Network workload that the host's
	// load generator measures (package hostload), not the agent.
	HostMeasures []Measure
	// Tools are the programs of the tools layer the workload runs inside
	// the instance, HostTools those the host runs to drive it: both must
	// be installed on the host.
	Tools, HostTools []tools.Tool
	// HostPaths are the flags that name a file or directory the workload
	// writes or removes: under the native driver, the host's, with
	// virtbench's privileges. A scenario file may set them only when the
	// user trusts it, as it may a driver option that names a host path.
	HostPaths []string
	// Demand says what one instance of the workload asks of its host
	// beyond the isolation's own cost, from its parsed flags (NoDemand for
	// a workload whose flags ask for nothing): the host's guards check it
	// before a trial starts. Every workload declares it
	// (TestEveryWorkloadDeclaresDemand), so that no flag can ask for more
	// than the guards see.
	Demand func(fs *flag.FlagSet) Demand
	// Takes, when set, says how long the workload runs at least, from its
	// parsed flags: the plan's estimate counts it in every trial.
	Takes func(fs *flag.FlagSet) time.Duration
	// Flags registers the workload's flags on fs and returns the function
	// that runs the workload once fs has been parsed.
	Flags func(fs *flag.FlagSet) func(ctx context.Context, a *Agent) error
}

// Measure declares one result of a workload (measure.Measure).
type Measure = measure.Measure

// Demand is what one instance of a workload asks of its host: memory it
// allocates and touches, bytes it writes to disk.
type Demand struct {
	MemoryBytes, DiskBytes int64
}

// NoDemand is the Demand of a workload whose flags ask nothing of the
// host beyond the agent itself.
func NoDemand(*flag.FlagSet) Demand { return Demand{} }

// DemandOf returns what one instance of the workload args (its name and
// flags) asks of its host. Errors are Prepare's.
func DemandOf(args []string) (Demand, error) {
	w, fs, err := parse(args)
	if err != nil {
		return Demand{}, err
	}
	return w.Demand(fs), nil
}

// TakesOf returns how long the workload args (its name and flags) runs at
// least (Workload.Takes); 0 for one that declares nothing, or args that do
// not parse.
func TakesOf(args []string) time.Duration {
	w, fs, err := parse(args)
	if err != nil || w.Takes == nil {
		return 0
	}
	return w.Takes(fs)
}

// flagInt returns the integer value of fs's flag name (0 when it is not
// an integer).
func flagInt(fs *flag.FlagSet, name string) int64 {
	f := fs.Lookup(name)
	if f == nil {
		return 0
	}
	n, _ := strconv.ParseInt(f.Value.String(), 10, 64)
	return n
}

// Workloads returns every workload, sorted by name.
func Workloads() []Workload {
	var ws []Workload
	for _, w := range registry {
		ws = append(ws, w)
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].Name < ws[j].Name })
	return ws
}

// Lookup returns the named workload.
func Lookup(name string) (Workload, bool) {
	w, ok := registry[name]
	return w, ok
}

// HTTPWorkloads names the workloads that serve HTTP (HTTPPath), sorted.
func HTTPWorkloads() []string {
	var names []string
	for name, w := range registry {
		if w.HTTPPath != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// UsageError is a bad command line: unknown workload or invalid flags.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Prepare parses args (the workload name followed by its flags) and returns
// the workload and its run function. Errors are *UsageError.
func Prepare(args []string) (Workload, func(context.Context, *Agent) error, error) {
	w, _, run, err := prepare(args)
	return w, run, err
}

// parse is Prepare without the run function.
func parse(args []string) (Workload, *flag.FlagSet, error) {
	w, fs, _, err := prepare(args)
	return w, fs, err
}

func prepare(args []string) (Workload, *flag.FlagSet, func(context.Context, *Agent) error, error) {
	if len(args) == 0 {
		return Workload{}, nil, nil, &UsageError{errors.New("no workload given")}
	}
	w, ok := Lookup(args[0])
	if !ok {
		return Workload{}, nil, nil, &UsageError{fmt.Errorf("unknown workload %q (have %s)", args[0], strings.Join(names(), ", "))}
	}
	fs := flag.NewFlagSet(w.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	run := w.Flags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return Workload{}, nil, nil, &UsageError{fmt.Errorf("%s: %w", w.Name, err)}
	}
	if fs.NArg() > 0 && !w.Command {
		return Workload{}, nil, nil, &UsageError{fmt.Errorf("%s: unexpected argument %q", w.Name, fs.Arg(0))}
	}
	return w, fs, run, nil
}

func names() []string {
	var ns []string
	for _, w := range Workloads() {
		ns = append(ns, w.Name)
	}
	return ns
}

// Run runs a prepared workload: READY, the workload, DONE, then it waits
// until ctx is done (the instance is stopped). It returns the workload's
// error after reporting it as an ERROR line.
func Run(ctx context.Context, a *Agent, w Workload, run func(context.Context, *Agent) error) error {
	if !w.Server {
		a.Ready(Ready{Workload: w.Name})
	}
	if err := run(ctx, a); err != nil && ctx.Err() == nil {
		a.Error(err)
		return err
	}
	if !w.Server {
		a.Done()
	}
	<-ctx.Done()
	return nil
}
