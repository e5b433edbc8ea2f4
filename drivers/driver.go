package drivers

import (
	"context"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	"virtbench/guest"
	"virtbench/images"
)

// Driver runs instances of workloads in one way (a process, a container, a VM).
type Driver interface {
	// Name is the registered name, e.g. "native".
	Name() string
	// Check reports whether the driver can run on this host. When it cannot,
	// the error wraps ErrUnavailable and says why and what would fix it.
	Check(ctx context.Context) error
	// Start begins an instance. ctx bounds the start only: the instance
	// lives until Stop, whatever happens to ctx. Start does not wait for
	// READY; call Instance.Ready. On error nothing of the instance is left.
	Start(ctx context.Context, spec Spec) (Instance, error)
}

// Spec says what one instance runs.
type Spec struct {
	// ID names the instance uniquely within the run; it is safe as a file name.
	ID string
	// Workload and Args are passed to the guest agent: virtbench-guest Workload Args...
	Workload string
	Args     []string
	// MemoryBytes limits the instance's memory (guest RAM for a VM, the
	// cgroup limit for a container); 0 means the driver's default.
	MemoryBytes int64
	// CPUs limits the instance's CPUs (vCPUs for a VM, a CPU quota for a
	// container); 0 means the driver's default.
	CPUs float64
	// Image, for Workload guest.ServiceWorkload, is the service's image:
	// the instance's root is its unpacked root (read-only, beneath a
	// writable layer of its own), where the agent execs the service (Args
	// are Process.AgentArgs). Only drivers whose Info.Services is set run
	// one.
	Image *images.Service
	// Process, with Image, is the service's process, for a driver that
	// starts it without the agent (a VM disk image's own init).
	Process *Process
}

// Process is a service's process, as its image's configuration and the
// scenario make it.
type Process struct {
	// Command is the program and its arguments; Env the whole
	// environment, KEY=VALUE.
	Command, Env []string
	// Dir is the working directory; User USER[:GROUP] ("": root).
	Dir, User string
	// Port is the TCP port it serves (0: none).
	Port int
}

// AgentArgs are the flags and command of the agent's service workload
// (guest.ServiceWorkload) that run p. There is no "--" before the command
// (whose first word is not a flag): a VM's kernel command line does not
// carry a second one to init.
func (p Process) AgentArgs() []string {
	args := []string{"-port", strconv.Itoa(p.Port)}
	for _, kv := range p.Env {
		args = append(args, "-env", kv)
	}
	if p.Dir != "" {
		args = append(args, "-dir", p.Dir)
	}
	if p.User != "" {
		args = append(args, "-user", p.User)
	}
	return append(args, p.Command...)
}

// Instance is one running copy of a workload.
type Instance interface {
	// ID returns Spec.ID.
	ID() string
	// Ready waits until the agent reports READY and returns the host-side
	// timeline of the start. It returns an error at once when the instance
	// exits first, and ctx's error (wrapped with ErrNotReady) when ctx ends
	// first. It may be called more than once.
	Ready(ctx context.Context) (Readiness, error)
	// Processes returns the host PIDs that make up the instance now.
	Processes() []int32
	// Output delivers RESULT, DONE and ERROR messages in order. It is closed
	// when the instance's console closes.
	Output() <-chan guest.Message
	// Stop stops the instance: gracefully, then by force when ctx ends or a
	// grace period passes. It releases everything the instance held
	// (processes, mounts, cgroups, files), in the reverse order of their
	// acquisition, as a failed Start does (drivers/internal/undo). It is
	// idempotent: later calls return the first call's result.
	Stop(ctx context.Context) error
}

// Readiness is the host-side timeline of an instance's start.
type Readiness struct {
	// Begin is when the driver began work for the instance, before any fork
	// or exec.
	Begin time.Time
	// Phases are intermediate host timestamps the driver can see, in order
	// (e.g. "vmm" when QEMU answered QMP, "runtime" when a runtime returned).
	Phases []Phase
	// At is when the READY line reached the host.
	At time.Time
	// Guest is the READY payload.
	Guest guest.Ready
	// GuestBoot is the in-guest boot phase where the instance has a kernel
	// of its own (how long its virtual CPU had run at READY, or where that
	// is unknown its kernel's uptime); 0 otherwise.
	GuestBoot time.Duration
	// Labels describe how the instance ran, e.g. accel=tcg.
	Labels map[string]string
}

// Phase is a named host timestamp during a start.
type Phase struct {
	Name string
	At   time.Time
}

// StepPhases places the agent's setup steps (Guest.Setup, seconds on its
// clock) on the host's time line, at says where, after the driver's last
// phase and before READY, as phases named after the steps. A step that
// at places before the last phase (the agent's clock and the host's
// disagree by a little) ends with it, and its own phase is 0.
func (r Readiness) StepPhases(at func(sec float64) time.Time) []Phase {
	last := r.Begin
	if n := len(r.Phases); n > 0 {
		last = r.Phases[n-1].At
	}
	var ps []Phase
	for _, m := range r.Guest.Setup {
		t := at(m.Sec)
		if t.Before(last) {
			t = last
		}
		if !t.Before(r.At) {
			break
		}
		ps = append(ps, Phase{Name: m.Name, At: t})
		last = t
	}
	return ps
}

// Startup returns the time from Begin to READY.
func (r Readiness) Startup() time.Duration { return r.At.Sub(r.Begin) }

// Cgrouper is implemented by instances that run in a cgroup of their own.
type Cgrouper interface {
	// CgroupMemoryBytes returns the cgroup's memory usage without page cache.
	CgroupMemoryBytes() (int64, error)
}

// Exiter is implemented by instances that can report an unexpected exit
// (a crash after READY), so a runner can attribute a failure.
type Exiter interface {
	// Exited is closed when the instance's main process has exited.
	Exited() <-chan struct{}
	// ExitErr describes how it exited; valid after Exited is closed.
	ExitErr() error
}

// ImageSizer is implemented by drivers whose instances start from an image
// on disk shared by every instance (a base layer, a kernel and initramfs).
type ImageSizer interface {
	ImageUsage() (images.Usage, error)
}

// ToolsSizer is implemented by drivers whose instances get the tools layer
// (images.BuildTools) beside their image: a read-only layer or disk that
// every instance of a tools workload shares.
type ToolsSizer interface {
	ToolsUsage() (images.Usage, error)
}

// WritableSizer is implemented by instances with a writable layer of their
// own (an overlay upper directory, a qcow2 overlay).
type WritableSizer interface {
	WritableUsage() (images.Usage, error)
}

// Dialer is implemented by instances the host can reach over their virtual
// network path: Dial connects to the instance's TCP port from a peer on the
// host (loopback for native, a veth peer namespace for containers).
type Dialer interface {
	Dial(ctx context.Context, port string) (net.Conn, error)
}

// PeerRunner is implemented by instances whose network path a host
// program can use (a load generator such as iperf3 or wrk): PeerAddr is
// the address of the instance's TCP port as the path's host end sees it,
// and StartAtPeer starts cmd there (in the peer network namespace that
// Dial dials from; natively, on the host), for the caller to wait for.
// Without a path both return ErrNotApplicable.
type PeerRunner interface {
	PeerAddr(port string) (string, error)
	StartAtPeer(cmd *exec.Cmd) error
}

// Preparer is implemented by drivers that prepare something once before
// their instances (a VM snapshot to start them from): Prepared reports
// what that cost, once it is done.
type Preparer interface {
	Prepared() []Measure
}

// ServicePreparer is implemented by drivers that prepare something per
// service before its instances start (a VM template holding the service's
// disk): the runner calls PrepareService once per service the variant
// runs, before its trials, so that no start pays for it.
type ServicePreparer interface {
	PrepareService(img *images.Service) error
}

// ServiceImageUser is implemented by drivers that may run a service from
// something other than its image's root (a VM disk image of its own):
// UsesServiceImage says whether their instances use the root, whose disk
// footprint is then theirs.
type ServiceImageUser interface {
	UsesServiceImage() bool
}

// Floorer is implemented by drivers whose start has a floor of their own
// to set the start beside: Floor measures it, with nothing of virtbench's
// in it (QEMU started bare to its first QMP answer), a few times.
type Floorer interface {
	Floor(ctx context.Context) ([]Measure, error)
}

// Measure is one named value a driver reports about itself.
type Measure struct {
	Metric, Unit string
	Value        float64
}

// KnownFailer is implemented by drivers that, on this host, are known to
// fail a workload for a reason outside virtbench (a runtime release with
// a defect): KnownFailure says why, or "" for a workload it runs. The
// runner leaves such a workload out of the variant's plan, saying why
// once and recording it in run.json, so that a failure of a run means
// something went wrong; the conformance suite asserts that it still fails,
// so that a fixed runtime is noticed.
type KnownFailer interface {
	KnownFailure(workload string) string
}

// ArgChecker is implemented by drivers that carry the agent's arguments
// where their bytes or length are limited (a kernel command line):
// CheckArgs says why args (the workload and its flags) cannot reach the
// agent intact. Scenario validation calls it, so that a trial that could
// never start is refused at load, not after waiting out its timeout.
type ArgChecker interface {
	CheckArgs(args []string) error
}

// LineWaiter is implemented by instances whose output the host reads:
// WaitLine returns when a line of the instance's output other than the
// agent's protocol matches re (a service's log probe), with the time the
// line arrived; a line that came before the call (it is in the kept
// tail) counts at the call's time. It fails when the instance exits or
// ctx ends first.
type LineWaiter interface {
	WaitLine(ctx context.Context, re *regexp.Regexp) (time.Time, error)
}

// MemoryParter is implemented by instances whose memory splits into named
// parts worth reporting, e.g. a VM's guest RAM and its VMM's overhead.
type MemoryParter interface {
	MemoryParts() (map[string]int64, error)
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// SafeName turns an instance ID into a name safe for a file, a cgroup, a
// host name and a container: at most 60 of the characters A-Z a-z 0-9 _ . -,
// not starting with a dot. Distinct IDs that differ only in other
// characters map to the same name; a run's IDs never do.
func SafeName(id string) string {
	s := unsafeChars.ReplaceAllString(id, "_")
	if len(s) > 60 {
		s = s[len(s)-60:]
	}
	if s == "" || s[0] == '.' {
		s = "i" + s
	}
	return s
}
