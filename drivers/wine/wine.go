// Package wine is the application-virtualization driver: the Windows twin
// of the agent (guest/win32), built with mingw-w64, runs under Wine, which
// translates its Win32 calls into Linux ones. The program is an ordinary
// host process: nothing isolates it beyond what the host gives a process,
// and each translated call has a cost of its own (an NT system call is
// served by ntdll's Unix side and often by a round trip to the
// wineserver, Wine's stand-in for the NT kernel).
//
// The Wine prefix (C: drive and registry) is made once with wineboot and
// cached, like an image; each run mounts a copy-on-write overlay of it in
// its state directory, so that runs neither change the cache nor share a
// wineserver. The run's instances share one wineserver and its Windows
// services (services.exe, winedevice.exe, explorer.exe …): the first
// instance to start pays their start (about a second here), the others
// find them running. When the last instance stops, the driver stops the
// wineserver (which ends the services), unmounts the overlay and removes
// it: nothing is left. An instance's processes, for memory, are its
// program and the session's shared processes.
package wine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"virtbench/drivers"
	"virtbench/drivers/internal/agentproc"
	"virtbench/drivers/internal/undo"
	"virtbench/drivers/state"
	"virtbench/guest"
	"virtbench/guest/win32"
	"virtbench/images"
	"virtbench/internal/results"
)

// Wine's programs as Debian's wine64 package installs them.
const (
	Wine       = "/usr/lib/wine/wine64"
	WineServer = "/usr/lib/wine/wineserver"
)

// Grace is how long Stop waits after SIGTERM before SIGKILL.
const Grace = 2 * time.Second

// MetricPrefixCreate is the driver's own metric: making the prefix.
const MetricPrefixCreate = "wine_prefix_create"

func init() {
	drivers.Register(drivers.Info{
		Name:           "wine",
		Virtualization: "application virtualization: a Windows program on Wine, which translates its Win32 calls into Linux ones; a plain host process otherwise",
		Class:          results.ClassApplication,
		// the program, the wineserver and six Windows services
		Estimate: drivers.Estimate{Tasks: 60, MemoryBytes: 160 << 20, Trial: 2 * time.Second},
		Tools: []drivers.Tool{{Name: "wine", Version: []string{Wine, "--version"}},
			{Name: "mingw-w64", Version: []string{images.MinGW, "--version"}}},
		Measures: map[string]results.MetricKind{
			MetricPrefixCreate: {Family: results.FamilyStartup, Unit: "sec", Better: results.LowerIsBetter, Once: true,
				Doc: "making the Wine prefix with wineboot, once per machine (cached like an image)"},
		},
		Factory: func(env drivers.Env) (drivers.Driver, error) { return New(env), nil },
	})
}

// Driver runs the Windows agent under Wine.
type Driver struct {
	env drivers.Env

	prepOnce sync.Once
	prepErr  error
	exe      string
	prefix   images.WinePrefix

	mu      sync.Mutex
	session *session // while instances run
	live    map[*instance]bool
}

var (
	_ drivers.Driver     = (*Driver)(nil)
	_ drivers.ImageSizer = (*Driver)(nil)
	_ drivers.Preparer   = (*Driver)(nil)
	_ drivers.ArgChecker = (*Driver)(nil)
)

// New returns a wine driver for env.
func New(env drivers.Env) *Driver { return &Driver{env: env, live: map[*instance]bool{}} }

// Name returns "wine".
func (d *Driver) Name() string { return "wine" }

// Check reports whether this host runs Windows programs: root (the run's
// prefix is an overlay mount), Wine and the cross compiler; it then builds
// the Windows agent and the prefix, once.
func (d *Driver) Check(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return drivers.Unavailable("needs root to mount the run's copy-on-write Wine prefix (run virtbench as root)")
	}
	if _, err := os.Stat(Wine); err != nil {
		return drivers.Unavailable("Wine is not installed (apt-get install wine64): %v", err)
	}
	if _, err := exec.LookPath(images.MinGW); err != nil {
		return drivers.Unavailable("the mingw-w64 cross compiler is not installed (apt-get install gcc-mingw-w64-x86-64), which builds the Windows agent")
	}
	if _, err := os.Stat(d.env.Agent); err != nil {
		return drivers.Unavailable("agent binary: %v (build it with ./run.sh or go build ./cmd/virtbench-guest; the Windows agent is built beside it)", err)
	}
	return d.prepare(ctx)
}

// prepare builds, once, the Windows agent beside the Linux one (the
// agent binary's path with .exe added) and the prefix.
func (d *Driver) prepare(ctx context.Context) error {
	d.prepOnce.Do(func() {
		if _, err := os.Stat(d.env.Agent); err != nil {
			d.prepErr = fmt.Errorf("the agent binary: %w (the Windows agent is built beside it)", err)
			return
		}
		exe := d.env.Agent + ".exe"
		if d.prepErr = images.BuildWinAgent(exe, win32.Source); d.prepErr != nil {
			return
		}
		d.exe = exe
		d.prefix, d.prepErr = images.BuildWinePrefix(ctx, d.env.CacheDir, Wine, WineServer)
	})
	if d.prepErr != nil {
		return fmt.Errorf("wine: %w", d.prepErr)
	}
	return nil
}

// CheckArgs refuses a workload the Windows agent does not run.
func (d *Driver) CheckArgs(args []string) error {
	if len(args) == 0 || !slices.Contains(win32.Workloads, args[0]) {
		w := ""
		if len(args) > 0 {
			w = args[0]
		}
		return fmt.Errorf("wine: the Windows agent runs %s, not %q", strings.Join(win32.Workloads, ", "), w)
	}
	return nil
}

// ImageUsage is the prefix and the agent on disk.
func (d *Driver) ImageUsage() (images.Usage, error) {
	if d.prepErr != nil || d.exe == "" {
		return images.Usage{}, errors.New("wine: not prepared")
	}
	return images.DiskUsageAll(d.prefix.Dir, d.exe)
}

// Prepared reports how long making the prefix took.
func (d *Driver) Prepared() []drivers.Measure {
	if d.exe == "" {
		return nil
	}
	return []drivers.Measure{{Metric: MetricPrefixCreate, Unit: "sec", Value: d.prefix.Took.Seconds()}}
}

// Start runs the Windows agent under Wine in the run's session.
func (d *Driver) Start(ctx context.Context, spec drivers.Spec) (_ drivers.Instance, err error) {
	begin := time.Now()
	args := append([]string{spec.Workload}, spec.Args...)
	if err := d.CheckArgs(args); err != nil {
		return nil, err
	}
	if err := d.prepare(ctx); err != nil {
		return nil, err
	}
	inst := &instance{d: d, id: spec.ID}
	defer inst.undo.OnError(&err)
	s, err := d.join(inst)
	if err != nil {
		return nil, err
	}
	inst.undo.Push(func() error { return d.leave(inst) })
	nonce := guest.NewNonce()
	cmd := exec.Command(Wine, append([]string{d.exe}, args...)...)
	cmd.Env = append(s.env(), guest.NonceEnv+"="+string(nonce))
	// The program dies with virtbench; the wineserver then exits on its
	// own once it has no client left.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p, err := agentproc.Start(cmd, begin, nonce, agentproc.WithStartPhase("exec"), agentproc.WithCombinedOutput())
	if err != nil {
		return nil, fmt.Errorf("wine: %w", err)
	}
	inst.p = p
	inst.undo.Push(p.Kill)
	return inst, nil
}

// join adds inst to the run's session, making the session first if none
// runs.
func (d *Driver) join(inst *instance) (*session, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.session == nil {
		s, err := newSession(d.env.StateDir, d.prefix.Dir)
		if err != nil {
			return nil, err
		}
		d.session = s
	}
	d.live[inst] = true
	return d.session, nil
}

// leave removes inst from the session, ending the session after its last
// instance.
func (d *Driver) leave(inst *instance) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.live, inst)
	if len(d.live) > 0 || d.session == nil {
		return nil
	}
	s := d.session
	d.session = nil
	return s.end()
}

// others returns the programs of the live instances but inst.
func (d *Driver) others(inst *instance) []int32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []int32
	for o := range d.live {
		if o != inst && o.p != nil {
			out = append(out, int32(o.p.Pid()))
		}
	}
	return out
}

// session is a run's Wine session: the overlay of the cached prefix that
// its instances share, and the wineserver they start in it.
type session struct {
	dir    string // the session's directory in the run's state directory
	prefix string // the overlay's mount point: WINEPREFIX
}

// newSession mounts a copy-on-write overlay of the cached prefix in the
// run's state directory, recorded first for virtbench clean.
func newSession(stateDir, lower string) (*session, error) {
	s := &session{dir: filepath.Join(stateDir, "wine-session")}
	s.prefix = filepath.Join(s.dir, "prefix")
	for _, p := range []string{s.dir, filepath.Join(s.dir, "upper"), filepath.Join(s.dir, "work"), s.prefix} {
		if err := os.Mkdir(p, 0o700); err != nil {
			os.RemoveAll(s.dir)
			return nil, fmt.Errorf("wine: session: %w", err)
		}
	}
	if err := state.Write(s.dir, state.Record{Driver: "wine", Mounts: []string{s.prefix}}); err != nil {
		os.RemoveAll(s.dir)
		return nil, fmt.Errorf("wine: %w", err)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, filepath.Join(s.dir, "upper"), filepath.Join(s.dir, "work"))
	if err := unix.Mount("overlay", s.prefix, "overlay", 0, opts); err != nil {
		os.RemoveAll(s.dir)
		return nil, fmt.Errorf("wine: mount the prefix overlay: %w", err)
	}
	return s, nil
}

// env is the environment of a program in the session.
func (s *session) env() []string {
	return []string{"PATH=/usr/bin:/bin", "HOME=" + s.dir, "WINEPREFIX=" + s.prefix, "WINEDEBUG=-all",
		// No .NET or HTML engine to install: the agent needs neither. No
		// menu builder: it would write desktop entries, and it exits on its
		// own just after a program starts, a process of the session that
		// Processes could list as it goes.
		"WINEDLLOVERRIDES=mscoree,mshtml=;winemenubuilder.exe=d"}
}

// processes returns the session's processes: every process running with
// its WINEPREFIX (the wineserver, the Windows services, the programs).
func (s *session) processes() []int32 {
	mark := []byte("\x00WINEPREFIX=" + s.prefix + "\x00")
	ents, _ := os.ReadDir("/proc")
	var out []int32
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		if bytes.Contains(append([]byte{0}, env...), mark) {
			out = append(out, int32(pid))
		}
	}
	return out
}

// end stops the wineserver (and with it the Windows services), waits for
// every process of the session to exit, and unmounts and removes the
// overlay.
func (s *session) end() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var errs []error
	for _, flag := range []string{"-k", "-w"} {
		cmd := exec.CommandContext(ctx, WineServer, flag)
		cmd.Env = s.env()
		// -k fails when no server runs: nothing to stop then.
		_ = cmd.Run()
	}
	for _, pid := range s.processes() {
		_ = syscall.Kill(int(pid), syscall.SIGKILL)
	}
	for i := 0; i < 200 && len(s.processes()) > 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if left := s.processes(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("wine: session processes %v still running", left))
	}
	if err := unix.Unmount(s.prefix, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		errs = append(errs, fmt.Errorf("wine: unmount %s: %w", s.prefix, err))
	}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, fmt.Errorf("wine: %w", err))
	}
	return errors.Join(errs...)
}

type instance struct {
	d  *Driver
	id string
	p  *agentproc.Process
	// undo stops the program, then leaves the session.
	undo undo.Stack
}

func (i *instance) ID() string                                           { return i.id }
func (i *instance) Ready(ctx context.Context) (drivers.Readiness, error) { return i.p.Ready(ctx) }
func (i *instance) Output() <-chan guest.Message                         { return i.p.Output() }
func (i *instance) Exited() <-chan struct{}                              { return i.p.Exited() }
func (i *instance) ExitErr() error                                       { return i.p.ExitErr() }

// Processes returns the program and the session's shared processes (the
// wineserver and the Windows services), not the other instances'
// programs.
func (i *instance) Processes() []int32 {
	own := int32(i.p.Pid())
	out := []int32{own}
	i.d.mu.Lock()
	s := i.d.session
	i.d.mu.Unlock()
	if s == nil {
		return out
	}
	others := i.d.others(i)
	for _, pid := range s.processes() {
		if pid != own && !slices.Contains(others, pid) {
			out = append(out, pid)
		}
	}
	return out
}

// Stop stops the program (SIGTERM, SIGKILL after Grace) and, after the
// session's last instance, the session.
func (i *instance) Stop(ctx context.Context) error {
	return i.undo.RunAfter(func() error { return i.p.Stop(ctx, Grace) })
}
