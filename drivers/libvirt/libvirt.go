// Package libvirt runs the agent in a QEMU VM that libvirt defines and
// starts, as OpenStack Nova, virt-manager and most KVM hosts start theirs:
// domain XML written with libvirtxml, sent to libvirtd's QEMU driver
// (qemu:///system) over go-libvirt's RPC. The guest is the qemu driver's
// own (qemu.ColdGuest): the same kernel, initramfs, kernel command line,
// disks, machine type, device models, accelerator and RAM, so that what
// differs from the qemu driver is libvirt's: its daemon, its start path
// (define, then start: libvirtd spawns QEMU paused, sets it up over QMP
// and lets it run), its devices' defaults and its seccomp sandbox.
//
// The domain is persistent, named virtbench-RUN-ID, and tagged as the
// run's in its metadata (libvirtd.Tag): Stop destroys and undefines it,
// and virtbench clean removes a killed run's only when the tag names that
// run. QEMU runs as root without relabelling (a static DAC label), as the
// qemu driver's QEMU does, so that the files it opens need no change of
// owner; the daemon's other security drivers are its own.
//
// The console is the guest's serial port, a Unix socket virtbench listens
// on and QEMU connects to as it starts (the vmm phase); the kernel names
// QEMU's PID as the socket's peer, and QEMU's end of it closing is the
// VM's exit. The start's phases: define (libvirtd defined the domain),
// vmm (QEMU connected its serial port), start (libvirtd's start returned:
// the VM runs), the guest's boot, then the agent. The accelerator QEMU
// reports (QMP query-kvm, through libvirt's monitor passthrough) labels
// every instance, and an instance whose accelerator is not the one asked
// for fails: libvirt never falls back silently either.
//
// libvirtd and virtlogd serve every VM, whatever their number: they are
// the driver's daemons (drivers.Daemoner), whose memory the runner reads
// beside the VMs' and the capacity model holds once.
//
// libvirt 9.0 has no microvm machine (it needs a PCI bus): the machine is
// pc or q35, and its fair pair is the qemu driver with the same machine.
// No network: the qemu driver's tap is passed to QEMU as a descriptor,
// which a VM libvirt starts cannot inherit.
//
// Options (scenario "libvirt.NAME"): see Options. Untested on the machines
// virtbench is developed on: domain type kvm (they have no
// hardware-assisted /dev/kvm); it is chosen where KVM is usable.
package libvirt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"golang.org/x/sys/unix"
	"libvirt.org/go/libvirtxml"

	"virtbench/drivers"
	"virtbench/drivers/internal/agentproc"
	"virtbench/drivers/internal/libvirtd"
	"virtbench/drivers/internal/undo"
	"virtbench/drivers/qemu"
	"virtbench/drivers/state"
	"virtbench/guest"
	"virtbench/guest/vminit"
	"virtbench/images"
	"virtbench/internal/results"
)

// Grace is how long Stop waits for the guest to power off before libvirt
// destroys the domain, and then for QEMU's end of the console to close.
const Grace = 5 * time.Second

// MinVersion is the oldest libvirt the driver runs (major*1e6 +
// minor*1e3): TCG's translation cache size in domain XML came with 8.0.
const MinVersion = 8_000_000

// qemuOptions are the qemu driver's options this driver takes as they
// are: they set the guest, which is the qemu driver's.
var qemuOptions = []string{"accel", "devices", "memory", "cpus", "tb-size", "image", "kernel", "binary"}

// Options are the driver's settings.
var Options = options()

func options() []drivers.Option {
	opts := []drivers.Option{
		{Name: "machine", Values: []string{"pc", "q35"}, Default: "pc", Doc: "machine type (libvirt has no microvm: set this driver beside qemu with the same machine)"},
		{Name: "socket", HostPath: true, Default: libvirtd.Socket, Doc: "libvirtd's socket; virtlogd's is virtlogd-sock beside it"},
	}
	for _, o := range qemu.Options {
		if !slices.Contains(qemuOptions, o.Name) {
			continue
		}
		if o.Name == "devices" {
			o.Doc = "virtio: a paravirtual disk; emulated: an IDE disk (the VM has no NIC)"
		}
		opts = append(opts, o)
	}
	return opts
}

func init() {
	drivers.Register(drivers.Info{
		Name:           "libvirt",
		Virtualization: "VM: QEMU defined and started through libvirt (libvirtd's QEMU driver), hardware-assisted (KVM) where usable, else full emulation (TCG); own guest kernel",
		Class:          results.ClassVM,
		// QEMU as the qemu driver's, and libvirtd's per-domain share
		Estimate: drivers.Estimate{Tasks: 10, MemoryBytes: 544 << 20, Trial: 6 * time.Second},
		Options:  Options,
		Tools: []drivers.Tool{
			{Name: "libvirtd", Version: []string{"libvirtd", "--version"}},
			{Name: "qemu", Version: []string{"qemu-system-x86_64", "--version"}},
		},
		Labels: labels(),
		GuestMemory: func(opts map[string]string, memoryBytes int64) int64 {
			info, _ := drivers.Lookup("qemu")
			return info.GuestMemory(qemuOpts(opts), memoryBytes)
		},
		Factory: func(env drivers.Env) (drivers.Driver, error) { return New(env) },
	})
}

// LabelLauncher is the key of the label that says what started QEMU:
// libvirt, set on every instance of this driver, or (where the label is
// absent, the qemu driver) virtbench's own command line. A VM variant of
// each with the same guest is compared on it, as a technique.
const LabelLauncher = "launcher"

// LauncherNote is what the comparison of the launchers measures.
const LauncherNote = "What libvirt adds: the same guest (kernel, initramfs, machine, devices, accelerator, RAM) started by virtbench's QEMU command line or defined and started through libvirtd, as OpenStack Nova and virt-manager start VMs. libvirt's start adds its RPC, the domain's definition, its QEMU probing and monitor set-up, its seccomp sandbox and device defaults; its daemons (libvirtd, virtlogd) are held once per host (daemon_pss), not per VM."

// labels are the qemu driver's labels an instance of this one carries,
// and the launcher.
func labels() []results.Label {
	var ls []results.Label
	for _, l := range qemu.Labels {
		if l.Key != qemu.LabelBoot {
			ls = append(ls, l)
		}
	}
	return append(ls, results.Label{Key: LabelLauncher, Role: results.LabelSetting,
		Doc: "what started QEMU: libvirt (libvirtd), or virtbench's own command line (qemu)",
		Technique: &results.Technique{On: []string{"libvirt"}, Off: "qemu",
			Compare: []string{results.MetricStartup, results.MetricPSS, results.MetricHostMemDrop}, Note: LauncherNote}})
}

// qemuOpts returns the qemu driver's options for this driver's: those it
// shares, with the machine.
func qemuOpts(opts map[string]string) map[string]string {
	q := map[string]string{}
	for k, v := range opts {
		if k == "machine" || slices.Contains(qemuOptions, k) {
			q[k] = v
		}
	}
	if q["machine"] == "" {
		q["machine"] = "pc"
	}
	return q
}

// Driver starts VMs through libvirtd.
type Driver struct {
	env    drivers.Env
	socket string
	// vm makes the guest: the qemu driver with this driver's settings.
	vm *qemu.Driver
	// run distinguishes this run's domains from another run's on the
	// same daemon.
	run string

	mu   sync.Mutex
	conn *golibvirt.Libvirt
}

var (
	_ drivers.Driver     = (*Driver)(nil)
	_ drivers.ImageSizer = (*Driver)(nil)
	_ drivers.ToolsSizer = (*Driver)(nil)
	_ drivers.ArgChecker = (*Driver)(nil)
	_ drivers.Daemoner   = (*Driver)(nil)
)

// New returns a libvirt driver for env.
func New(env drivers.Env) (*Driver, error) {
	v, err := drivers.ParseOptions("libvirt", Options, env.Options)
	if err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	qenv := env
	qenv.Options = qemuOpts(env.Options)
	vm, err := qemu.New(qenv)
	if err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	sum := sha256.Sum256([]byte(env.StateDir))
	return &Driver{env: env, socket: v.String("socket"), vm: vm, run: hex.EncodeToString(sum[:4])}, nil
}

// Name returns "libvirt".
func (d *Driver) Name() string { return "libvirt" }

// Check does the qemu driver's checks (QEMU, the accelerator, the guest
// kernel, the images) and connects to libvirtd, which must be running and
// at least MinVersion.
func (d *Driver) Check(ctx context.Context) error {
	if err := d.vm.Check(ctx); err != nil {
		return err
	}
	l, err := d.connect()
	if err != nil {
		return err
	}
	v, err := l.ConnectGetLibVersion()
	if err != nil {
		return fmt.Errorf("libvirt: version: %w", err)
	}
	if v < MinVersion {
		return drivers.Unavailable("libvirt %d.%d is older than %d.%d (sudo apt-get install libvirt-daemon)", v/1_000_000, v/1000%1000, MinVersion/1_000_000, MinVersion/1000%1000)
	}
	return nil
}

// connect returns the driver's connection to libvirtd, made once and
// made again when the daemon dropped it.
func (d *Driver) connect() (*golibvirt.Libvirt, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn != nil && d.conn.IsConnected() {
		return d.conn, nil
	}
	if err := drivers.NeedBinary("libvirtd", "libvirt-daemon"); err != nil {
		return nil, err
	}
	l, err := libvirtd.Dial(d.socket)
	if errors.Is(err, libvirtd.ErrNotRunning) {
		return nil, drivers.Unavailable("%v: start it (with virtlogd: virtlogd -d && libvirtd -d, or systemctl start libvirtd; ./run.sh test starts one of its own for the tests)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	d.conn = l
	return l, nil
}

// Daemons returns the PIDs of libvirtd and virtlogd, the peers of their
// sockets.
func (d *Driver) Daemons() ([]int32, error) {
	var pids []int32
	for _, s := range []string{d.socket, filepath.Join(filepath.Dir(d.socket), "virtlogd-sock")} {
		pid, err := drivers.SocketPeer(s)
		if err != nil {
			return pids, fmt.Errorf("libvirt: %w", err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// ImageUsage is the qemu driver's: the kernel, the initramfs and the disk.
func (d *Driver) ImageUsage() (images.Usage, error) { return d.vm.ImageUsage() }

// ToolsUsage is the qemu driver's tools disk.
func (d *Driver) ToolsUsage() (images.Usage, error) { return d.vm.ToolsUsage() }

// CheckArgs is the qemu driver's: the arguments travel on the kernel
// command line.
func (d *Driver) CheckArgs(args []string) error { return d.vm.CheckArgs(args) }

// Start defines the domain and starts it. ctx bounds nothing past the
// start: the VM lives until Stop.
func (d *Driver) Start(_ context.Context, spec drivers.Spec) (_ drivers.Instance, err error) {
	begin := time.Now()
	accel, err := d.vm.Accel()
	if err != nil {
		return nil, err
	}
	l, err := d.connect()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(spec.ID))
	inst := &instance{
		id: spec.ID, l: l,
		name: "virtbench-" + d.run + "-" + drivers.SafeName(spec.ID),
		// Short: a socket's path holds 107 bytes.
		dir:     filepath.Join(d.env.StateDir, "libvirt-"+hex.EncodeToString(sum[:6])),
		vmmDone: make(chan struct{}), exited: make(chan struct{}), accelDone: make(chan struct{}),
	}
	defer inst.undo.OnError(&err)
	ln, err := inst.makeDir()
	if err != nil {
		return nil, err
	}
	nonce := guest.NewNonce()
	g, err := d.vm.ColdGuest(inst.dir, accel, spec, nonce)
	if err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	inst.ramBytes, inst.disk = g.RAMBytes, g.Disk
	x, err := d.domainXML(inst, accel, g, ln.Addr().String()).Marshal()
	if err != nil {
		return nil, fmt.Errorf("libvirt: domain XML: %w", err)
	}
	if err := state.Write(inst.dir, state.Record{Driver: "libvirt", Domains: []string{inst.name}, LibvirtSocket: d.socket}); err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	inst.console = agentproc.NewConsole(begin, nonce)
	go inst.accept(ln)
	if err := inst.define(x); err != nil {
		return nil, err
	}
	if err := inst.start(); err != nil {
		return nil, err
	}
	inst.labels = map[string]string{
		qemu.LabelMachine: d.vm.Config().Machine, qemu.LabelDevices: d.vm.Config().Devices,
		qemu.LabelImage: d.vm.Config().Image, qemu.LabelAccelRequested: d.vm.Config().Accel,
		LabelLauncher: "libvirt",
	}
	if accel == results.AccelTCG {
		inst.labels[qemu.LabelTBSize] = strconv.Itoa(d.vm.Config().TBSizeMiB)
	}
	go inst.checkAccel(accel)
	return inst, nil
}

// domainXML is the VM's domain: the guest g on machine and accelerator as
// the qemu driver's command line has them (its BIOS, ACPI, CPU model,
// translation cache, disk cache and device models), the serial port on
// the console socket, and nothing libvirt would add by default (a USB
// controller, a memory balloon). On reboot, power-off or crash libvirt
// destroys it, as QEMU's -no-reboot ends the qemu driver's VMs.
func (d *Driver) domainXML(inst *instance, accel string, g qemu.ColdGuest, consoleSock string) *libvirtxml.Domain {
	c := d.vm.Config()
	// libvirt's domain type for TCG is qemu.
	typ := "kvm"
	if accel == results.AccelTCG {
		typ = "qemu"
	}
	dom := &libvirtxml.Domain{
		Type: typ, Name: inst.name, Metadata: libvirtd.Tag(d.env.StateDir),
		Memory: &libvirtxml.DomainMemory{Value: uint(g.RAMBytes >> 20), Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: uint(c.CPUs)},
		OS: &libvirtxml.DomainOS{
			Type:   &libvirtxml.DomainOSType{Arch: "x86_64", Machine: c.Machine, Type: "hvm"},
			Kernel: g.Kernel, Initrd: g.Initrd, Cmdline: g.Cmdline,
		},
		Features:   &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}},
		CPU:        &libvirtxml.DomainCPU{Mode: "host-passthrough"},
		OnPoweroff: "destroy", OnReboot: "destroy", OnCrash: "destroy",
		SecLabel: []libvirtxml.DomainSecLabel{{Type: "static", Model: "dac", Relabel: "no", Label: "+0:+0"}},
		Devices: &libvirtxml.DomainDeviceList{
			Emulator:    emulator(c.Binary),
			Controllers: []libvirtxml.DomainController{{Type: "usb", Model: "none"}},
			Serials: []libvirtxml.DomainSerial{{Source: &libvirtxml.DomainChardevSource{
				UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "connect", Path: consoleSock}}}},
			MemBalloon: &libvirtxml.DomainMemBalloon{Model: "none"},
		},
	}
	if accel == results.AccelTCG {
		dom.CPU.Mode = "maximum"
		dom.Features.TCG = &libvirtxml.DomainFeatureTCG{TBCache: &libvirtxml.DomainFeatureTCGTBCache{Unit: "MiB", Size: uint(c.TBSizeMiB)}}
	}
	if bios := qemu.Firmware(); bios != "" {
		dom.OS.Loader = &libvirtxml.DomainLoader{Path: bios, Type: "rom", Readonly: "yes"}
	}
	bus, dev := "virtio", "vd"
	if c.Devices == "emulated" {
		bus, dev = "ide", "hd"
	}
	if g.Disk != "" {
		dom.Devices.Disks = append(dom.Devices.Disks, disk(g.Disk, "qcow2", bus, dev+"a", false))
	}
	if g.Tools != "" {
		dom.Devices.Disks = append(dom.Devices.Disks, disk(g.Tools, "raw", bus, dev+string(rune('a'+len(dom.Devices.Disks))), true))
	}
	return dom
}

// disk is a file-backed disk, as the qemu driver attaches its own: no
// host cache, I/O on QEMU's threads; a read-only one shared by every VM.
func disk(path, format, bus, target string, readonly bool) libvirtxml.DomainDisk {
	dd := libvirtxml.DomainDisk{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: format, Cache: "none", IO: "threads"},
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}},
		Target: &libvirtxml.DomainDiskTarget{Dev: target, Bus: bus},
	}
	if readonly {
		dd.ReadOnly = &libvirtxml.DomainDiskReadOnly{}
		dd.Shareable = &libvirtxml.DomainDiskShareable{}
	}
	return dd
}

// emulator returns the QEMU binary's path, as libvirt takes it.
func emulator(binary string) string {
	if p, err := exec.LookPath(binary); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	return binary
}

// instance is one domain.
type instance struct {
	id, name, dir string
	l             *golibvirt.Libvirt
	dom           golibvirt.Domain
	ramBytes      int64
	disk          string // the qcow2 overlay, or ""
	labels        map[string]string

	console *agentproc.Console
	// Set by accept before vmmDone is closed: QEMU's connection to the
	// console, when it came, its PID (the socket's peer) and an error.
	vmmDone chan struct{}
	conn    net.Conn
	vmmUp   time.Time
	pid     int32
	vmmErr  error
	// exited is closed when QEMU's end of the console closed.
	exited chan struct{}

	defined, started time.Time

	// Set by checkAccel before accelDone is closed.
	accelDone chan struct{}
	accelErr  error

	undo undo.Stack
}

var (
	_ drivers.Instance      = (*instance)(nil)
	_ drivers.Exiter        = (*instance)(nil)
	_ drivers.MemoryParter  = (*instance)(nil)
	_ drivers.WritableSizer = (*instance)(nil)
)

// makeDir makes the instance's directory and the console socket QEMU will
// connect to.
func (i *instance) makeDir() (*net.UnixListener, error) {
	if err := os.Mkdir(i.dir, 0o700); err != nil {
		return nil, fmt.Errorf("libvirt: instance directory: %w", err)
	}
	i.undo.Push(func() error {
		if err := os.RemoveAll(i.dir); err != nil {
			return fmt.Errorf("libvirt: %w", err)
		}
		return nil
	})
	sock := filepath.Join(i.dir, "console.sock")
	if len(sock) >= len(unix.RawSockaddrUnix{}.Path) {
		return nil, fmt.Errorf("libvirt: the console socket's path %s is longer than a socket address holds (%d bytes): use a shorter state directory", sock, len(unix.RawSockaddrUnix{}.Path)-1)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("libvirt: console socket: %w", err)
	}
	i.undo.Push(func() error { ln.Close(); return nil })
	return ln, nil
}

// accept waits for QEMU to connect the serial port, then reads the
// console until QEMU's end closes, which is the VM's exit.
func (i *instance) accept(ln *net.UnixListener) {
	conn, err := ln.AcceptUnix()
	if err == nil {
		i.vmmUp = time.Now()
		i.pid, err = drivers.PeerPID(conn)
		i.conn = conn
	}
	i.vmmErr = err
	close(i.vmmDone)
	if err != nil {
		close(i.exited)
		return
	}
	ln.Close()
	i.console.Read(conn)
	close(i.exited)
}

// define defines the domain (persistent) and arranges its undefinition.
func (i *instance) define(x string) error {
	dom, err := i.l.DomainDefineXML(x)
	if err != nil {
		return fmt.Errorf("libvirt: defining domain %s: %w", i.name, err)
	}
	i.defined = time.Now()
	i.dom = dom
	i.undo.Push(func() error {
		if err := i.l.DomainUndefineFlags(dom, 0); err != nil && !golibvirt.IsNotFound(err) {
			return fmt.Errorf("libvirt: undefining domain %s: %w", i.name, err)
		}
		return nil
	})
	return nil
}

// start starts the domain and arranges its destruction.
func (i *instance) start() error {
	if _, err := i.l.DomainCreateWithFlags(i.dom, 0); err != nil {
		return fmt.Errorf("libvirt: starting domain %s: %w", i.name, err)
	}
	i.started = time.Now()
	i.undo.Push(i.destroy)
	return nil
}

// destroy stops QEMU at once if the domain still runs, waits for its end
// of the console to close, and closes the console.
func (i *instance) destroy() error {
	// Also after QEMU exited: libvirt ends a guest's own power-off in
	// the background, and destroy waits for it.
	derr := i.l.DomainDestroyFlags(i.dom, 0)
	off := i.awaitShutoff()
	var err error
	if derr != nil && !isNotRunning(derr) && !off {
		err = fmt.Errorf("libvirt: destroying domain %s: %w", i.name, derr)
	}
	select {
	case <-i.vmmDone:
	case <-time.After(Grace):
	}
	if i.conn != nil {
		select {
		case <-i.exited:
		case <-time.After(Grace):
		}
		i.conn.Close()
	}
	return err
}

// awaitShutoff waits up to Grace for libvirt to say the domain is shut
// off, so that the undefinition that follows removes it (undefining a
// domain that still runs only makes it transient, and it lingers until
// it stops). It reports whether the domain is off.
func (i *instance) awaitShutoff() bool {
	deadline := time.Now().Add(Grace)
	for {
		st, _, err := i.l.DomainGetState(i.dom, 0)
		if err != nil || golibvirt.DomainState(st) == golibvirt.DomainShutoff {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// isNotRunning reports whether err says the domain is already off.
func isNotRunning(err error) bool {
	var e golibvirt.Error
	return golibvirt.IsNotFound(err) || errors.As(err, &e) && e.Code == uint32(golibvirt.ErrOperationInvalid)
}

// checkAccel asks QEMU, through libvirt, which accelerator it runs on.
func (i *instance) checkAccel(requested string) {
	defer close(i.accelDone)
	out, err := i.l.QEMUDomainMonitorCommand(i.dom, `{"execute":"query-kvm"}`, 0)
	if err != nil {
		i.accelErr = fmt.Errorf("libvirt: query-kvm: %w", err)
		return
	}
	var r struct {
		Return struct{ Enabled bool } `json:"return"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		i.accelErr = fmt.Errorf("libvirt: query-kvm answered %q: %w", out, err)
		return
	}
	used := results.AccelTCG
	if r.Return.Enabled {
		used = results.AccelKVM
	}
	i.labels[qemu.LabelAccel] = used
	if used != requested {
		i.accelErr = fmt.Errorf("libvirt: asked for domain type %s but QEMU reports %s", requested, used)
	}
}

func (i *instance) ID() string                   { return i.id }
func (i *instance) Output() <-chan guest.Message { return i.console.Output() }
func (i *instance) Exited() <-chan struct{}      { return i.exited }

// ExitErr says how the domain ended, as libvirt reports its state.
func (i *instance) ExitErr() error {
	select {
	case <-i.exited:
	default:
		return nil
	}
	if i.vmmErr != nil {
		return fmt.Errorf("%w: QEMU never connected its console: %v", drivers.ErrExited, i.vmmErr)
	}
	st, reason, err := i.l.DomainGetState(i.dom, 0)
	if err != nil {
		return fmt.Errorf("%w: QEMU closed its console", drivers.ErrExited)
	}
	return fmt.Errorf("%w: QEMU closed its console; the domain is %s", drivers.ErrExited, stateString(golibvirt.DomainState(st), reason))
}

// stateString names a domain's state and its reason.
func stateString(st golibvirt.DomainState, reason int32) string {
	if st == golibvirt.DomainShutoff {
		return fmt.Sprintf("shut off (%s)", shutoffReasons[golibvirt.DomainShutoffReason(reason)])
	}
	return fmt.Sprintf("in state %d (reason %d)", st, reason)
}

var shutoffReasons = map[golibvirt.DomainShutoffReason]string{
	golibvirt.DomainShutoffUnknown: "unknown", golibvirt.DomainShutoffShutdown: "the guest powered off",
	golibvirt.DomainShutoffDestroyed: "destroyed", golibvirt.DomainShutoffCrashed: "QEMU crashed",
	golibvirt.DomainShutoffFailed: "failed to start",
}

// Processes returns QEMU's PID once it connected its console.
func (i *instance) Processes() []int32 {
	select {
	case <-i.vmmDone:
		if i.pid > 0 {
			return []int32{i.pid}
		}
	default:
	}
	return nil
}

// Ready waits for READY and returns the phases define, vmm and start,
// the guest's boot and the agent's.
func (i *instance) Ready(ctx context.Context) (drivers.Readiness, error) {
	r, err := i.console.Ready(ctx, i.exited, i.ExitErr)
	if err != nil {
		return r, err
	}
	select {
	case <-i.accelDone:
	case <-ctx.Done():
		return drivers.Readiness{}, fmt.Errorf("%w: libvirt did not say which accelerator QEMU runs on: %w", drivers.ErrNotReady, context.Cause(ctx))
	}
	if i.accelErr != nil {
		return drivers.Readiness{}, i.accelErr
	}
	r.Phases = []drivers.Phase{{Name: "define", At: i.defined}, {Name: "vmm", At: i.vmmUp}, {Name: "start", At: i.started}}
	if i.started.Before(i.vmmUp) {
		return drivers.Readiness{}, fmt.Errorf("libvirt: QEMU connected its console after libvirt's start returned")
	}
	r.Labels = i.labels
	r.GuestBoot = qemu.GuestBoot(r.Guest)
	return r, nil
}

// MemoryParts splits QEMU's resident memory as the qemu driver does.
func (i *instance) MemoryParts() (map[string]int64, error) {
	pids := i.Processes()
	if len(pids) == 0 {
		return nil, errors.New("libvirt: QEMU has not connected its console")
	}
	return qemu.MemoryParts(pids[0], i.ramBytes, "")
}

// WritableUsage returns the footprint of the instance's disk overlay, or
// ErrNotApplicable when the VM has no disk.
func (i *instance) WritableUsage() (images.Usage, error) {
	if i.disk == "" {
		return images.Usage{}, drivers.ErrNotApplicable
	}
	return images.DiskUsage(i.disk)
}

// Stop asks the guest to power off (STOP on the console), then has
// libvirt destroy the domain, then undefines it and removes the
// instance's directory.
func (i *instance) Stop(ctx context.Context) error {
	return i.undo.RunAfter(func() error {
		select {
		case <-i.vmmDone:
		case <-ctx.Done():
			return nil
		}
		if i.conn == nil {
			return nil
		}
		_, _ = i.conn.Write([]byte(vminit.StopCommand + "\n"))
		t := time.NewTimer(Grace)
		defer t.Stop()
		select {
		case <-i.exited:
		case <-t.C:
		case <-ctx.Done():
		}
		return nil
	})
}
