// Package qemu runs the agent in a QEMU virtual machine: hardware-assisted
// (KVM) where /dev/kvm is usable, full emulation (TCG) otherwise, and
// reports which one QEMU actually used (QMP query-kvm), never assuming it.
//
// The guest boots Debian's kernel directly (PVH: the uncompressed vmlinux
// virtbench extracts from /boot/vmlinuz-*) with an initramfs virtbench
// writes, whose /init is the agent (see guest/vminit). The console is the
// serial port on QEMU's stdio; QMP is a socket virtbench creates and hands
// to QEMU, so the QMP greeting marks the moment the VMM is up. Workloads
// that use a disk get a per-instance qcow2 overlay over a shared ext4 base
// image, mounted on the guest's /tmp.
//
// Options (scenario "qemu.NAME"): see Options. A variant with accel=tcg
// is full emulation on any host; the default, auto, is hardware-assisted
// where KVM is usable.
//
// With boot=snapshot (as Firecracker snapshots and Kata's VM templates
// start VMs), Check boots one template VM whose agent sets up what every
// VM shares and waits on the console (vminit.AwaitWorkload); QEMU saves it
// stopped with a QMP migrate to "exec:cat > FILE" in the run's state
// directory. Every instance then starts QEMU with the same command line and
// -incoming from that file, each with its own qcow2 overlay and tap; once
// QMP says the state is loaded, cont lets it run and its workload, address
// and 32 bytes of entropy arrive on the console. Startup is still exec to
// READY, in phases vmm, restore (state loaded, running) and agent; there is
// no guest boot. What clones share, and a guest can see: the guest clock
// continues from the template's (uptime and the vCPU counter include the
// template's boot), and the kernel's random pool and every process's
// state are the template's until the agent credits the host's entropy
// (RNDADDENTROPY), which reseeds the kernel's generator; the agent's own Go
// runtime keeps the template's seed. Every VM of a snapshot has a disk,
// mounted only for workloads that use one. The snapshot's creation time
// and size are recorded once per run (Prepared).
//
// With boot=template (Kata Containers' VM templating), the template's RAM
// is a file in the run's state directory (memory-backend-file, share=on:
// the template's writes land in the file) and the snapshot leaves the RAM
// out (the migration capability x-ignore-shared): a state file of tens of
// KB. Every clone maps that file MAP_PRIVATE (share=off) and loads only
// the device state, so it starts without copying the guest's memory and
// holds only the pages it writes; the host holds the template's pages
// once, in its page cache (template_ram_bytes, once per run). What clones
// share until they write it: the template's kernel layout, page cache and
// everything else its memory held; as with KSM, shared pages are a side
// channel between the clones, and a secret in the template is in all of
// them (BootNote). The file goes with the state directory: at the run's
// end, on an interrupt, and by virtbench clean.
//
// Untested on the machines virtbench is developed on (they have no
// /dev/kvm, or one served by kvm_pvm, which boots no stock guest kernel):
// the accel=kvm command line (-accel kvm -cpu host) and the KVM branch of
// accelerator selection. Both are selected automatically where
// hardware-assisted KVM is usable; the reported accelerator always comes
// from QMP.
package qemu

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"virtbench/drivers"
	"virtbench/drivers/internal/agentproc"
	"virtbench/drivers/internal/undo"
	"virtbench/drivers/internal/vnet"
	"virtbench/drivers/state"
	"virtbench/guest"
	"virtbench/guest/vminit"
	"virtbench/images"
	"virtbench/internal/kvm"
	"virtbench/internal/results"

	"github.com/digitalocean/go-qemu/qmp/raw"
	"github.com/shirou/gopsutil/v4/process"
)

// Grace is how long Stop waits for the guest to power off, and then for
// QEMU to quit, before SIGKILL.
const Grace = 5 * time.Second

// The values of the boot option.
const (
	BootCold     = "cold"
	BootSnapshot = "snapshot"
	BootTemplate = "template"
)

// Options are the driver's settings.
var Options = []drivers.Option{
	{Name: "accel", Values: []string{"auto", "kvm", "tcg"}, Default: "auto", Doc: "accelerator: auto is kvm where hardware-assisted KVM is usable, else tcg (full emulation)"},
	{Name: "machine", Values: []string{"microvm", "pc", "q35"}, Default: "microvm", Doc: "machine type"},
	{Name: "devices", Values: []string{"virtio", "emulated"}, Default: "virtio", Doc: "virtio: paravirtual disk and NIC; emulated: IDE disk and e1000 NIC (machine pc or q35)"},
	{Name: "memory", Kind: drivers.Positive, Doc: "guest RAM in MiB (default 256, or the scenario's memory)"},
	{Name: "cpus", Kind: drivers.Positive, Default: "1", Doc: "vCPUs"},
	{Name: "tb-size", Kind: drivers.Positive, Default: "64", Doc: "TCG translation cache in MiB (QEMU's own default is 1 GiB)"},
	{Name: "image", Values: []string{"minimal", "debian"}, Default: "minimal", Doc: "minimal: the agent is the guest's init; debian: a full Debian guest booting systemd from a 4 GiB ext4 disk, the agent a service (the traditional VM)"},
	{Name: "kernel", HostPath: true, Doc: "the guest kernel image (default: the newest /boot/vmlinuz-*)"},
	{Name: "binary", HostPath: true, Default: "qemu-system-x86_64", Doc: "the QEMU binary"},
	{Name: "network", Values: []string{"none", "tap"}, Default: "none", Doc: "none: no NIC; tap: a NIC (virtio-net, or e1000 with devices=emulated) on a tap in a peer namespace virtbench creates (image=minimal only)"},
	{Name: "vm_image", HostPath: true, Doc: "a VM disk image (qcow2, or raw with a partition table) with its own kernel and init, booted through the firmware (machine pc or q35) instead of virtbench's kernel and initramfs, configured by a cloud-init NoCloud seed virtbench writes (its NIC's address, the service it starts): the traditional VM, for a service workload"},
	{Name: "boot", Values: []string{BootCold, BootSnapshot, BootTemplate}, Default: BootCold, Doc: "cold: every VM boots its kernel; snapshot: one VM boots and waits for its workload, QEMU saves it, and every VM starts from that state (-incoming), then receives its workload; template: as snapshot, but the template's RAM is a file every VM maps copy-on-write, shared until written (Kata's VM templating; image=minimal only)"},
}

func init() {
	drivers.Register(drivers.Info{
		Name:           "qemu",
		Virtualization: "VM: QEMU, hardware-assisted (KVM) where usable, else full emulation (TCG); own guest kernel",
		Class:          results.ClassVM,
		// A VM per pod is what Kata Containers runs (its QEMU handler).
		Handler: "kata-qemu",
		// QEMU: 4 threads, 256 MiB of guest RAM and about 150 MiB of its own
		Estimate: drivers.Estimate{Tasks: 8, MemoryBytes: 512 << 20, Trial: 5 * time.Second},
		Options:  Options,
		Tools:    []drivers.Tool{{Name: "qemu", Version: []string{"qemu-system-x86_64", "--version"}}},
		Measures: map[string]results.MetricKind{
			MetricSnapshotCreate: {Family: results.FamilyStartup, Unit: "sec", Better: results.LowerIsBetter, Once: true, Doc: "with boot=snapshot or template, making the snapshot: booting the template VM and saving it, once per run and variant"},
			MetricSnapshotBytes:  {Family: results.FamilyDisk, Unit: "B", Better: results.LowerIsBetter, Once: true, Doc: "with boot=snapshot or template, the saved device state's size on disk (with template, the RAM is not in it)"},
			MetricTemplateRAM:    {Family: results.FamilyMemory, Unit: "B", Better: results.LowerIsBetter, Once: true, Doc: "with boot=template, the template's RAM file as the host holds it (its allocated bytes), which every VM maps and the host holds once"},
		},
		Labels: Labels,
		GuestMemory: func(opts map[string]string, memoryBytes int64) int64 {
			c, _ := parseConfig(opts) // checked at load; a bad one is reported there
			return int64(guestMiB(c.MemoryMiB, memoryBytes)) << 20
		},
		Services: true,
		Factory:  func(env drivers.Env) (drivers.Driver, error) { return New(env) },
	})
}

// The label keys of a VM instance.
const (
	LabelMachine        = "machine"
	LabelDevices        = "devices"
	LabelImage          = drivers.LabelImage
	LabelBoot           = "boot"
	LabelAccel          = "accel"
	LabelAccelRequested = "requested_accel"
	LabelTBSize         = "tb_size_mib"
)

// BootNote is what VMs started from a saved template share, for the
// report beside the boot comparisons.
const BootNote = "What restored VMs share: every VM started from one snapshot or template (boot=snapshot, boot=template) begins as a copy of the same guest — its kernel's memory layout (KASLR offsets), its page cache, the random pool until virtbench credits fresh entropy, the clock continued from the template's. With boot=template the copy is not made: every VM maps the template's RAM file copy-on-write, so pages it has not written are the same physical pages in every VM, as KSM would merge them. Like KSM, such shared pages are a side channel between VMs (the time to write a shared page, cache attacks on shared memory), and a secret in the template's memory is in every clone: templates suit VMs of one tenant."

// Labels declare what a VM instance's labels say.
var Labels = []results.Label{
	{Key: LabelMachine, Role: results.LabelSetting, Doc: "the QEMU machine type (microvm, pc, q35)"},
	{Key: LabelDevices, Role: results.LabelDevices, Doc: "virtio (paravirtual) or emulated device models",
		Technique: &results.Technique{On: []string{"virtio"}, Off: "emulated"}},
	drivers.ImageLabel,
	{Key: LabelBoot, Role: results.LabelSetting, Doc: "how the VM started: a cold boot, restored from a snapshot, or cloned from a template whose memory it shares",
		Technique: &results.Technique{On: []string{BootSnapshot, BootTemplate}, Off: BootCold, Compare: []string{results.MetricStartup, results.MetricPSS, results.MetricPSSOwn}, Note: BootNote}},
	{Key: LabelAccel, Role: results.LabelAccel, Doc: "the accelerator QEMU reported running the guest on"},
	{Key: LabelAccelRequested, Role: results.LabelAccelRequested, Doc: "the accel option the variant ran with: auto (kvm where hardware-assisted KVM is usable, else tcg), kvm or tcg"},
	{Key: LabelTBSize, Doc: "TCG's translation block cache, MiB"},
}

// DefaultMemoryMiB is a VM's RAM when neither the memory option nor the
// scenario's memory says.
const DefaultMemoryMiB = 256

// guestMiB returns a VM's RAM in MiB: the memory option (memoryMiB, 0
// when not given), else the scenario's memory per instance, else
// DefaultMemoryMiB.
func guestMiB(memoryMiB int, memoryBytes int64) int {
	if memoryMiB > 0 {
		return memoryMiB
	}
	if memoryBytes > 0 {
		return int(memoryBytes >> 20)
	}
	return DefaultMemoryMiB
}

// Config is the driver's configuration, from drivers.Env.Options.
type Config struct {
	// Accel is auto, kvm or tcg.
	Accel string
	// Machine is microvm, pc or q35.
	Machine string
	// Devices is virtio or emulated.
	Devices string
	// MemoryMiB is the guest RAM (0: the spec's memory, else 256).
	MemoryMiB int
	// CPUs is the number of vCPUs.
	CPUs int
	// TBSizeMiB is TCG's translation cache size.
	TBSizeMiB int
	// Image is minimal or debian.
	Image string
	// Kernel is the kernel image; empty means the newest /boot/vmlinuz-*.
	Kernel string
	// Binary is the QEMU executable.
	Binary string
	// Network is none or tap.
	Network string
	// Boot is BootCold, BootSnapshot or BootTemplate.
	Boot string
	// VMImage is a disk image with its own kernel and init, booted
	// through the firmware; "" for virtbench's kernel and initramfs.
	VMImage string
}

// parseConfig reads options, checked against Options, and validates how
// they combine.
func parseConfig(opts map[string]string) (Config, error) {
	v, err := drivers.ParseOptions("qemu", Options, opts)
	if err != nil {
		return Config{}, fmt.Errorf("qemu: %w", err)
	}
	c := Config{
		Accel: v.String("accel"), Machine: v.String("machine"), Devices: v.String("devices"),
		MemoryMiB: v.Int("memory"), CPUs: v.Int("cpus"), TBSizeMiB: v.Int("tb-size"),
		Image: v.String("image"), Kernel: v.String("kernel"), Binary: v.String("binary"),
		Network: v.String("network"), Boot: v.String("boot"), VMImage: v.String("vm_image"),
	}
	switch {
	case c.Devices == "emulated" && c.Machine == "microvm":
		return Config{}, errors.New("qemu: devices=emulated needs machine=pc or q35 (microvm has only virtio devices)")
	case c.Network == "tap" && c.Image == "debian":
		return Config{}, errors.New("qemu: network=tap needs image=minimal (the Debian guest does not configure the address)")
	case c.Boot != BootCold && c.Image == "debian":
		return Config{}, fmt.Errorf("qemu: boot=%s needs image=minimal (the saved VM's agent waits for its workload as the guest's init)", c.Boot)
	case c.VMImage != "" && c.Machine == "microvm":
		return Config{}, errors.New("qemu: vm_image boots through the firmware: set machine=pc or q35 (microvm has no firmware disk boot)")
	case c.VMImage != "" && (c.Boot != BootCold || c.Image != "minimal"):
		return Config{}, errors.New("qemu: vm_image is a VM of its own: it takes neither boot=snapshot|template nor image=debian")
	}
	if c.VMImage != "" {
		if _, err := vmImageFormat(c.VMImage); err != nil {
			return Config{}, fmt.Errorf("qemu: %w", err)
		}
	}
	return c, nil
}

// Driver starts QEMU VMs.
type Driver struct {
	env drivers.Env
	cfg Config

	once   sync.Once
	kernel images.Kernel
	initrd images.Initramfs
	// debianDisk is the full OS guest's root disk (image=debian).
	debianDisk string
	err        error

	peer vnet.LazyPeer

	// The tools layer, and the disk made of it once (toolsDisk).
	tools     images.LazyTools
	toolsOnce sync.Once
	toolsPath string
	toolsErr  error

	// With boot=snapshot or template: the saved templates, one per
	// service disk ("" for the agent's workloads), each made once.
	templatesMu sync.Mutex
	templates   map[string]*vmTemplate
	first       *vmTemplate // the first made, whose cost Prepared reports

	// vmImageFormat is vm_image's format (qcow2 or raw), once checked.
	vmImageFormat string

	// overlays makes every VM's disk overlay, once its base is known.
	overlaysMu sync.Mutex
	overlays   *images.Overlays
}

var (
	_ drivers.Driver     = (*Driver)(nil)
	_ drivers.ImageSizer = (*Driver)(nil)
	_ drivers.Preparer   = (*Driver)(nil)
	_ drivers.Floorer    = (*Driver)(nil)
)

// allocatedBytes returns the bytes a file holds on its file system (its
// blocks): of a sparse RAM file, the pages the guest wrote.
func allocatedBytes(path string) (int64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Blocks * 512, nil
}

// The driver's own metrics (declared in its drivers.Info.Measures).
const (
	MetricSnapshotCreate = "snapshot_create"
	MetricSnapshotBytes  = "snapshot_bytes"
	MetricTemplateRAM    = "template_ram_bytes"
)

// New returns a QEMU driver for env.
func New(env drivers.Env) (*Driver, error) {
	cfg, err := parseConfig(env.Options)
	if err != nil {
		return nil, err
	}
	return &Driver{env: env, cfg: cfg}, nil
}

// Name returns "qemu".
func (d *Driver) Name() string { return "qemu" }

// KVMUsable reports whether hardware-assisted KVM is usable here: /dev/kvm
// opens read-write and is backed by VT-x or AMD-V (see kvm.Check).
func KVMUsable() error { return kvm.Check() }

// Accel returns the accelerator to ask QEMU for: kvm or tcg, as the accel
// option and the host decide, never one silently for the other.
func (d *Driver) Accel() (string, error) {
	switch d.cfg.Accel {
	case "tcg":
		return "tcg", nil
	case "kvm":
		if err := KVMUsable(); err != nil {
			return "", drivers.Unavailable("accel=kvm but hardware-assisted KVM is not usable: %v (load kvm_intel or kvm_amd on a CPU with VT-x or AMD-V, or use accel=tcg)", err)
		}
		return "kvm", nil
	}
	if KVMUsable() == nil {
		return "kvm", nil
	}
	return "tcg", nil
}

func (d *Driver) images() error {
	d.once.Do(func() {
		if d.cfg.VMImage != "" {
			d.vmImageFormat, d.err = vmImageFormat(d.cfg.VMImage)
			return // its own kernel and init
		}
		var img string
		img, d.err = images.FindKernel(d.cfg.Kernel)
		if d.err != nil {
			return
		}
		d.kernel, d.err = images.PrepareKernel(d.env.CacheDir, img)
		if d.err != nil {
			return
		}
		d.initrd, d.err = images.BuildInitramfs(d.env.CacheDir, d.env.Agent, filepath.Join("/lib/modules", d.kernel.Version))
		if d.err != nil || d.cfg.Image != "debian" {
			return
		}
		var base string
		if base, d.err = images.DebianBase(d.env.CacheDir); d.err != nil {
			return
		}
		d.debianDisk, d.err = images.BuildDebianDisk(d.env.CacheDir, base)
	})
	return d.err
}

// Check finds QEMU, the accelerator, the guest kernel and the tools the
// images need, and builds the images. A host without one of those makes
// the driver unavailable; a failure to build the images once they are all
// there is an ordinary error.
func (d *Driver) Check(context.Context) error {
	if err := drivers.NeedBinary(d.cfg.Binary, "qemu-system-x86"); err != nil {
		return err
	}
	if _, err := d.Accel(); err != nil {
		return err
	}
	if d.cfg.Network == "tap" && os.Geteuid() != 0 {
		return drivers.Unavailable("network=tap needs root (a network namespace and a tap device)")
	}
	tools := [][2]string{{"xz", "xz-utils"}, {"qemu-img", "qemu-utils"}, {"mkfs.ext4", "e2fsprogs"}}
	if d.cfg.VMImage != "" {
		tools = [][2]string{{"qemu-img", "qemu-utils"}, {"mkfs.vfat", "dosfstools"}, {"mcopy", "mtools"}}
	} else if _, err := images.FindKernel(d.cfg.Kernel); err != nil {
		return drivers.Unavailable("%v", err)
	}
	if d.cfg.Image == "debian" {
		tools = append(tools, [2]string{"debootstrap", "debootstrap"})
	}
	for _, t := range tools {
		if err := drivers.NeedBinary(t[0], t[1]); err != nil {
			return err
		}
	}
	if err := d.images(); err != nil {
		return fmt.Errorf("qemu: images: %w", err)
	}
	if d.cfg.Boot != BootCold {
		_, err := d.template(nil)
		return err
	}
	return nil
}

// ImageUsage returns the footprint of what every VM shares: the kernel
// image, the extracted vmlinux, the initramfs and (once built) the base disk.
func (d *Driver) ImageUsage() (images.Usage, error) {
	if err := d.images(); err != nil {
		return images.Usage{}, err
	}
	if d.cfg.VMImage != "" {
		return images.DiskUsage(d.cfg.VMImage)
	}
	paths := []string{d.kernel.Vmlinux, d.initrd.Path, images.BaseDiskPath(d.env.CacheDir)}
	if d.debianDisk != "" {
		paths[2] = d.debianDisk
	}
	return images.DiskUsageAll(paths...)
}

// usesDisk reports whether a workload needs the instance's disk.
func usesDisk(workload string) bool {
	w, ok := guest.Lookup(workload)
	return ok && w.Disk
}

// kernelArg rejects agent arguments that the kernel command line cannot
// carry intact (it splits on spaces and has no quoting for init's argv).
func kernelArg(a string) error {
	if a == "" || strings.ContainsAny(a, " \t\n\",\x00") {
		return fmt.Errorf("qemu: agent argument %q cannot be passed on the kernel command line", a)
	}
	return nil
}

// MaxCmdline is the most bytes x86's kernel command line holds
// (COMMAND_LINE_SIZE, its terminating NUL included): the kernel cuts the
// rest, and the guest then boots without the agent's arguments.
const MaxCmdline = 2048

// CheckArgs reports whether the agent's arguments (the workload and its
// flags) reach the guest intact: for a cold boot, on the kernel command
// line, which has no quoting and holds MaxCmdline bytes; for a VM restored
// from a snapshot, in the console line of its Workload, which the guest
// reads up to vminit.MaxWorkloadLine bytes. It assumes the longest
// command line this configuration makes (TCG, every disk, a NIC).
func (d *Driver) CheckArgs(args []string) error {
	if d.cfg.Boot != BootCold {
		line, err := vminit.FormatWorkload(vminit.Workload{Args: args, Nonce: guest.NewNonce(), IP: "255.255.255.255/32", Seed: make([]byte, 32), Disk: true})
		if err != nil {
			return fmt.Errorf("qemu: %w", err)
		}
		if len(line) > vminit.MaxWorkloadLine {
			return fmt.Errorf("qemu: the workload's console line would be %d bytes; a restored guest reads at most %d", len(line), vminit.MaxWorkloadLine)
		}
		return nil
	}
	for _, a := range args {
		if err := kernelArg(a); err != nil {
			return err
		}
	}
	longest := vmPlan{mode: cold, accel: "tcg", disk: "disk", tools: "tools", service: "service", ip: "255.255.255.255/32", agentArgs: args, nonce: guest.NewNonce()}
	cmdline := strings.Join(d.kernelCmdline(longest), " ")
	if len(cmdline) >= MaxCmdline {
		return fmt.Errorf("qemu: the kernel command line with these agent arguments would be %d bytes; x86 holds %d", len(cmdline), MaxCmdline-1)
	}
	return nil
}

// Start boots a VM, or with boot=snapshot or template starts one from the
// template of its service disk, if any (made by Check, PrepareService,
// else now). ctx bounds nothing past the exec: the VM's
// lifetime is not tied to it.
func (d *Driver) Start(_ context.Context, spec drivers.Spec) (drivers.Instance, error) {
	begin := time.Now()
	if err := d.images(); err != nil {
		return nil, fmt.Errorf("qemu: images: %w", err)
	}
	switch {
	case d.cfg.VMImage != "":
		return d.launch(begin, spec, firmware, nil)
	case d.cfg.Boot == BootCold:
		return d.launch(begin, spec, cold, nil)
	}
	t, err := d.template(spec.Image)
	if err != nil {
		return nil, err
	}
	return d.launch(begin, spec, restore, t)
}

// mode is how a VM starts.
type mode int

const (
	cold     mode = iota // boots its kernel with the workload on the command line
	template             // boots and waits for a workload, to be saved
	restore              // starts from the saved template, then gets its workload
	firmware             // boots a VM disk image (vm_image) through the firmware
)

// toolsFor returns the tools disk a VM of workload in mode m gets: with a
// workload of the tools layer; with a snapshot, whenever the host has the
// tools (a restored VM's devices are its template's, and the template
// serves every workload, so none where the host lacks the tools); else
// none. The full OS guest has none.
func (d *Driver) toolsFor(workload string, m mode) (string, error) {
	need := guest.NeedsTools(workload)
	switch {
	case need && d.debianDisk != "":
		return "", errors.New("qemu: image=debian has no tools disk; the tools workloads run with image=minimal")
	case !need && (m == cold || d.debianDisk != ""):
		return "", nil
	}
	p, err := d.toolsDisk()
	// Without the tools a template has no tools disk, and nor do its
	// clones: only a workload that needs one fails.
	if err != nil && !need {
		return "", nil
	}
	return p, err
}

// toolsDisk returns the tools disk, made once from the tools layer.
func (d *Driver) toolsDisk() (string, error) {
	d.toolsOnce.Do(func() {
		t, err := d.tools.Get(d.env.CacheDir)
		if err == nil {
			d.toolsPath, err = images.BuildToolsDisk(t)
		}
		if err != nil {
			d.toolsErr = fmt.Errorf("qemu: tools disk: %w", err)
		}
	})
	return d.toolsPath, d.toolsErr
}

// ToolsUsage returns the footprint of the tools disk every VM of a tools
// workload shares.
func (d *Driver) ToolsUsage() (images.Usage, error) {
	p, err := d.toolsDisk()
	if err != nil {
		return images.Usage{}, err
	}
	return images.DiskUsage(p)
}

// makeInstanceDir makes the instance's directory and the QMP socket QEMU
// will accept its monitor connection on; it returns the socket's path and
// its listening descriptor, for QEMU to inherit. The socket is reached
// through a descriptor of its directory: a state directory's path can
// exceed the 108 bytes a socket address holds. watchVMM closes that
// descriptor once connected.
func (d *Driver) makeInstanceDir(inst *instance, id string) (string, *os.File, error) {
	inst.dir = filepath.Join(d.env.StateDir, "qemu-"+id)
	if err := os.Mkdir(inst.dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("qemu: instance directory: %w", err)
	}
	inst.undo.Push(func() error {
		if err := os.RemoveAll(inst.dir); err != nil {
			return fmt.Errorf("qemu: %w", err)
		}
		return nil
	})
	dirFD, err := os.Open(inst.dir)
	if err != nil {
		return "", nil, fmt.Errorf("qemu: %w", err)
	}
	inst.dirFD = dirFD
	inst.undo.Close(dirFD)
	qmpPath := fmt.Sprintf("/proc/self/fd/%d/qmp.sock", dirFD.Fd())
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: qmpPath, Net: "unix"})
	if err != nil {
		return "", nil, fmt.Errorf("qemu: QMP socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	lnFile, err := ln.File()
	ln.Close()
	if err != nil {
		return "", nil, fmt.Errorf("qemu: QMP socket: %w", err)
	}
	return qmpPath, lnFile, nil
}

// makeDisk gives the instance a copy-on-write overlay of the base disk
// (the Debian disk for image=debian).
func (d *Driver) makeDisk(inst *instance) error {
	disk, err := d.overlay(inst.dir)
	inst.disk = disk
	return err
}

// overlay makes dir/disk.qcow2, a copy-on-write overlay of the base disk
// (the Debian disk for image=debian, the VM disk image with vm_image), and
// returns its path.
func (d *Driver) overlay(dir string) (string, error) {
	base, format := d.debianDisk, ""
	switch {
	case d.cfg.VMImage != "":
		base, format = d.cfg.VMImage, d.vmImageFormat
	case base == "":
		var err error
		if base, err = images.BuildBaseDisk(d.env.CacheDir); err != nil {
			return "", fmt.Errorf("qemu: base disk: %w", err)
		}
	}
	d.overlaysMu.Lock()
	if d.overlays == nil {
		d.overlays = &images.Overlays{Base: base, Format: format, Dir: d.env.StateDir}
	}
	ov := d.overlays
	d.overlaysMu.Unlock()
	disk := filepath.Join(dir, "disk.qcow2")
	if err := ov.Create(disk); err != nil {
		return "", fmt.Errorf("qemu: disk overlay: %w", err)
	}
	return disk, nil
}

// network returns a tap on virtbench's peer namespace for QEMU to inherit
// and the guest's address/prefix.
func (d *Driver) network(inst *instance) (*os.File, string, error) {
	peer, err := d.peer.Get()
	if err != nil {
		return nil, "", fmt.Errorf("qemu: network: %w", err)
	}
	tap, link, err := peer.Tap()
	if err != nil {
		return nil, "", fmt.Errorf("qemu: network: %w", err)
	}
	inst.path = vnet.Path{Peer: peer, Link: link}
	return tap, link.InstanceAddr.String() + "/30", nil
}

// restoreWorkload is the WORKLOAD line a restored VM's agent reads on its
// console: the workload, nonce, address and fresh entropy the template's
// snapshot could not hold.
func restoreWorkload(args []string, nonce guest.Nonce, ip string, disk bool) ([]byte, error) {
	seed := make([]byte, 32)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	line, err := vminit.FormatWorkload(vminit.Workload{Args: args, Nonce: nonce, IP: ip, Seed: seed, Disk: disk})
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	return line, nil
}

// startVMM starts QEMU with qargs, its console on a pipe, and records its
// process for clean.
func (d *Driver) startVMM(inst *instance, begin time.Time, qargs []string, extra []*os.File, nonce guest.Nonce) error {
	cmd := exec.Command(d.cfg.Binary, qargs...)
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	inst.console = stdin
	inst.undo.Close(stdin)
	p, err := agentproc.Start(cmd, begin, nonce, agentproc.WithLineHook(inst.watchConsole))
	if err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	inst.p = p
	inst.undo.Push(inst.kill)
	proc := state.ProcessOf(p.Pid())
	if err := state.Write(inst.dir, state.Record{Driver: "qemu", Processes: []state.Process{proc}}); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	return nil
}

// commandLine returns QEMU's arguments for the plan p: its disks (the
// instance's, the tools disk, a service's), the NIC on the tap at fd 4
// where p has an address, the agent's arguments and nonce. A snapshot's
// template and the VMs restored from it get the same command line: no
// agent arguments, no address and no nonce (they come on the console),
// and SnapshotParam. With boot=template their RAM is the template's file:
// shared (share=on) by the template, which writes it, and private
// (share=off: MAP_PRIVATE, copy-on-write) in every clone.
func (d *Driver) commandLine(p vmPlan) []string {
	c, m := d.cfg, p.mode
	args := d.machineArgs(p.accel, p.memMiB)
	var ram []string
	if c.Boot == BootTemplate && m != cold {
		share := "off"
		if m == template {
			share = "on"
		}
		args[1] += ",memory-backend=ram"
		ram = []string{"-object", fmt.Sprintf("memory-backend-file,id=ram,size=%dM,mem-path=%s,share=%s", p.memMiB, p.ramFile, share)}
	}
	args = append(args, "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console")
	// A restored VM's RAM is its template's: a kernel and an initrd
	// loaded into it would be overwritten (and QEMU takes about 12 ms to
	// load them). A VM disk image boots its own through the firmware.
	if m != restore && m != firmware {
		args = append(args, "-kernel", d.kernel.Vmlinux, "-initrd", d.initrd.Path,
			"-append", strings.Join(d.kernelCmdline(p), " "))
	}
	args = append(args, ram...)
	// A VM disk image boots through QEMU's own firmware, SeaBIOS, which
	// reads its disk; virtbench's kernel needs none of that.
	if c.Machine != "microvm" && m != firmware {
		if bios := Firmware(); bios != "" {
			args = append(args, "-bios", bios)
		}
	}
	if p.disk != "" {
		args = append(args, "-drive", "file="+p.disk+",format=qcow2,if=none,id=disk0,cache=none,aio=threads",
			"-device", c.deviceModel("ide-hd", "virtio-blk")+",drive=disk0")
	}
	for _, shared := range []struct{ id, path string }{{"tools", p.tools}, {"service", p.service}, {"seed", p.seed}} {
		if shared.path == "" {
			continue
		}
		// One file, read-only, for every VM: the host caches it once. An
		// IDE disk cannot be read-only; its writes (none: the guest
		// mounts it read-only) would go to a temporary overlay.
		ro := "readonly=on"
		if c.Devices == "emulated" {
			ro = "snapshot=on"
		}
		args = append(args, "-drive", "file="+shared.path+",format=raw,if=none,id="+shared.id+","+ro,
			"-device", c.deviceModel("ide-hd", "virtio-blk")+",drive="+shared.id)
	}
	if p.ip != "" {
		nic := c.deviceModel("e1000", "virtio-net") + ",netdev=net0"
		if p.mac != "" {
			nic += ",mac=" + p.mac
		}
		args = append(args, "-netdev", "tap,id=net0,fd=4,vhost=off", "-device", nic)
	}
	return args
}

// machineArgs returns the arguments of the VM's machine with nothing
// attached but QMP on fd 3: its type ("-machine" first, then its value),
// accelerator, CPU, RAM and vCPUs, no default devices and no display.
func (d *Driver) machineArgs(accel string, memMiB int) []string {
	c := d.cfg
	machine := c.Machine
	if c.Machine == "microvm" {
		// No legacy timer or interrupt controller. The RTC stays: without
		// it the guest kernel spends seconds failing to read the time.
		machine += ",pit=off,pic=off"
	}
	accelArg, cpu := "kvm", "host"
	if accel == "tcg" {
		accelArg, cpu = fmt.Sprintf("tcg,tb-size=%d", c.TBSizeMiB), "max"
	}
	return []string{
		"-machine", machine, "-accel", accelArg, "-cpu", cpu,
		"-m", strconv.Itoa(memMiB), "-smp", strconv.Itoa(c.CPUs),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-chardev", "socket,id=qmp,fd=3,server=on,wait=off", "-mon", "chardev=qmp,mode=control",
	}
}

// kernelCmdline returns the guest kernel's command line for the plan p,
// word by word.
func (d *Driver) kernelCmdline(p vmPlan) []string {
	c, accel, disks, ip, agentArgs := d.cfg, p.accel, p.disks(), p.ip, p.agentArgs
	// quiet: printing to an emulated serial port is slow. The crypto
	// self-tests take a third of a second under emulation and test the
	// kernel, not the isolation; the PS/2 controller is not used.
	cmdline := []string{"console=ttyS0", "quiet", "panic=-1", "reboot=t", "cryptomgr.notests", "8250.nr_uarts=1", "i8042.noaux", "i8042.nopnp"}
	if c.Machine == "microvm" {
		cmdline = append(cmdline, "pci=off")
	}
	if accel == "tcg" {
		// Without a known TSC frequency the guest calibrates it, which can
		// hang under emulation. The emulated TSC follows the host's clock;
		// the guest's watchdog, which checks it against jiffies that a
		// loaded host delivers late, would otherwise swap it for
		// refined-jiffies, whose 4 ms steps time fio's I/O as 0 ns.
		cmdline = append(cmdline, "tsc_early_khz="+strconv.Itoa(hostTSCkHz()), "tsc=reliable")
	}
	if mods := c.guestModules(disks > 0, ip != "", p.service != ""); len(mods) > 0 {
		cmdline = append(cmdline, vminit.ModulesParam+"="+strings.Join(mods, ","))
	}
	if disks > 1 {
		cmdline = append(cmdline, vminit.DisksParam+"="+strconv.Itoa(disks))
	}
	if p.mode != cold {
		cmdline = append(cmdline, vminit.SnapshotParam+"=1")
		ip, agentArgs = "", nil
	} else {
		cmdline = append(cmdline, guest.NonceParam+"="+string(p.nonce))
	}
	if ip != "" {
		cmdline = append(cmdline, vminit.IPParam+"="+ip)
	}
	if c.Image == "debian" {
		// The full OS boots its own init from the disk; the agent, its
		// service, reads its arguments from here.
		root := "/dev/vda"
		if c.Devices == "emulated" {
			root = "/dev/sda"
		}
		cmdline = append(cmdline, "virtbench.root="+root, "virtbench.args="+strings.Join(agentArgs, ","), "systemd.show_status=0", "rw")
	} else if p.mode == cold {
		cmdline = append(cmdline, "--")
		cmdline = append(cmdline, agentArgs...)
	}
	return cmdline
}

// guestModules returns the kernel modules (of images.GuestModules) the
// guest needs for its disk, its NIC and a service's root, dependencies
// aside.
func (c Config) guestModules(disk, nic, service bool) []string {
	var m []string
	virtio := func(dev string) {
		transport := "virtio_mmio"
		if c.Machine != "microvm" {
			transport = "virtio_pci"
		}
		if !slices.Contains(m, transport) {
			m = append(m, transport)
		}
		m = append(m, dev)
	}
	if disk {
		if c.Devices == "emulated" {
			m = append(m, "ata_piix", "sd_mod")
		} else {
			virtio("virtio_blk")
		}
		m = append(m, "crc32c_generic", "ext4")
	}
	if nic {
		if c.Devices == "emulated" {
			m = append(m, "e1000")
		} else {
			virtio("virtio_net")
		}
	}
	if service {
		m = append(m, "overlay")
	}
	return m
}

// deviceModel returns the QEMU device model of a disk or NIC: the emulated
// one with devices=emulated, else the virtio one on microvm's MMIO
// transport (-device) or on PCI (-pci).
func (c Config) deviceModel(emulated, virtio string) string {
	switch {
	case c.Devices == "emulated":
		return emulated
	case c.Machine == "microvm":
		return virtio + "-device"
	}
	return virtio + "-pci"
}

// GuestBoot is a cold-booted guest's boot as its agent's READY reports
// it: how long its vCPU had run, or where that is unknown its kernel's
// uptime.
func GuestBoot(r guest.Ready) time.Duration {
	boot := r.VCPUSec
	if boot <= 0 {
		boot = r.UptimeSec
	}
	return time.Duration(boot * float64(time.Second))
}

// Firmware returns the BIOS a pc or q35 VM boots with: qboot, which
// boots the kernel straight away, where the host has it; else "" for
// QEMU's default (SeaBIOS).
func Firmware() string {
	if bios := "/usr/share/qemu/qboot.rom"; fileExists(bios) {
		return bios
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// hostTSCkHz returns the host CPU's frequency in kHz from /proc/cpuinfo,
// or 2 GHz when it cannot be read.
func hostTSCkHz() int {
	if mhz := guest.CPUMHz(); mhz > 0 {
		return int(mhz * 1000)
	}
	return 2000000
}

type instance struct {
	id       string
	mode     mode
	begin    time.Time // when the start began
	dir      string
	dirFD    *os.File // open until QMP is connected: the socket's path uses it
	disk     string
	ramBytes int64
	// ramFile is the template's RAM file this VM maps (boot=template), or
	// "": its RAM is anonymous memory.
	ramFile string
	// incoming is a restored VM's migration source (QMP migrate-incoming).
	incoming string
	p        *agentproc.Process
	console  interface {
		Write([]byte) (int, error)
		Close() error
	}
	labels map[string]string
	path   vnet.Path // the zero Path without a network option

	// panicked is the reason of the guest kernel's panic, once its
	// headline appeared on the console.
	panicked atomic.Pointer[string]
	// waiting is closed when a snapshot template waits for its workload;
	// workload is the console line a restored VM gets once running.
	waiting     chan struct{}
	waitingOnce sync.Once
	workload    []byte

	// Set by watchVMM before vmReady is closed.
	vmReady  chan struct{}
	vmmUp    time.Time
	restored time.Time // a restored VM: when it ran again
	mon      *monitor
	vmmErr   error

	// undo kills QEMU, then closes its console and the directory's
	// descriptor, then removes the instance directory.
	undo undo.Stack
}

var (
	_ drivers.Instance      = (*instance)(nil)
	_ drivers.Exiter        = (*instance)(nil)
	_ drivers.WritableSizer = (*instance)(nil)
	_ drivers.MemoryParter  = (*instance)(nil)
	_ drivers.Dialer        = (*instance)(nil)
	_ drivers.PeerRunner    = (*instance)(nil)
)

// watchVMM connects to QMP (the greeting marks the VMM as up) and asks
// which accelerator QEMU actually uses.
func (i *instance) watchVMM(qmpPath, requested string) {
	defer close(i.vmReady)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-i.p.Exited():
			cancel()
		case <-ctx.Done():
		}
	}()
	mon, err := connectQMP(ctx, qmpPath)
	i.dirFD.Close()
	if err != nil {
		i.vmmErr = err
		return
	}
	i.vmmUp = time.Now()
	i.mon = mon
	qctx, qcancel := context.WithTimeout(ctx, 10*time.Second)
	defer qcancel()
	kvm, err := mon.kvmEnabled(qctx)
	if err != nil {
		i.vmmErr = err
		return
	}
	used := results.AccelTCG
	if kvm {
		used = results.AccelKVM
	}
	i.labels[LabelAccel] = used
	if used != requested {
		i.vmmErr = fmt.Errorf("qemu: asked for accel=%s but QEMU reports %s", requested, used)
		return
	}
	if i.mode == restore {
		i.vmmErr = i.resume(ctx)
	}
}

// resume loads the snapshot (an incoming migration, which QEMU deferred
// until QMP asks: with boot=template, x-ignore-shared is set first, on
// both sides, so that the RAM the snapshot left out comes from the
// file), waits until it is loaded, lets the VM run, and writes its
// workload on the console.
func (i *instance) resume(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := i.mon.migrateIncoming(rctx, i.incoming, i.ramFile != ""); err != nil {
		return fmt.Errorf("qemu: restoring the snapshot: %w", err)
	}
	for {
		st, err := i.mon.status(rctx)
		if err != nil {
			return fmt.Errorf("qemu: restoring the snapshot: %w", err)
		}
		if st == raw.RunStateInmigrate {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		// Saved while stopped, it arrives paused.
		if st != raw.RunStateRunning {
			if err := i.mon.cont(rctx); err != nil {
				return fmt.Errorf("qemu: restoring the snapshot (the VM was %s): %w", st, err)
			}
		}
		break
	}
	i.restored = time.Now()
	if _, err := i.console.Write(i.workload); err != nil {
		return fmt.Errorf("qemu: sending the workload: %w", err)
	}
	return nil
}

func (i *instance) ID() string                   { return i.id }
func (i *instance) Output() <-chan guest.Message { return i.p.Output() }
func (i *instance) Exited() <-chan struct{}      { return i.p.Exited() }
func (i *instance) ExitErr() error               { return i.p.ExitErr() }
func (i *instance) WaitLine(ctx context.Context, re *regexp.Regexp) (time.Time, error) {
	return i.p.WaitLine(ctx, re)
}
func (i *instance) Processes() []int32 { return []int32{int32(i.p.Pid())} }

// panicHeadline starts the reason of a Linux kernel panic on the console.
// The headline comes before the stack trace, so it is often no longer in
// the console's tail when the VM has exited.
const panicHeadline = "Kernel panic - not syncing: "

// watchConsole remembers the reason of the first kernel panic on the
// console, and notes when a snapshot template waits.
func (i *instance) watchConsole(line []byte) {
	if i.mode == template && bytes.Contains(line, []byte(vminit.WaitingLine)) {
		i.waitingOnce.Do(func() { close(i.waiting) })
	}
	_, reason, ok := bytes.Cut(line, []byte(panicHeadline))
	if !ok || i.panicked.Load() != nil {
		return
	}
	r := strings.TrimSpace(string(reason))
	i.panicked.Store(&r)
}

// Ready waits for READY on the console and for QMP's answer, and returns
// the phases: vmm (exec to QMP greeting), then the guest's own boot
// (GuestBoot), then agent. When the guest kernel panicked, the error says
// so first, with the panic's reason, then the console's tail.
func (i *instance) Ready(ctx context.Context) (drivers.Readiness, error) {
	if i.mode == firmware {
		return i.vmmReady(ctx)
	}
	r, err := i.p.Ready(ctx)
	if err != nil {
		if reason := i.panicked.Load(); reason != nil {
			err = fmt.Errorf("qemu: guest kernel panicked: %s; %w", *reason, err)
		}
		return r, err
	}
	select {
	case <-i.vmReady:
	case <-ctx.Done():
		return drivers.Readiness{}, fmt.Errorf("%w: QMP did not answer: %w", drivers.ErrNotReady, context.Cause(ctx))
	}
	if i.vmmErr != nil {
		return drivers.Readiness{}, i.vmmErr
	}
	r.Phases = []drivers.Phase{{Name: "vmm", At: i.vmmUp}}
	r.Labels = i.labels
	if i.mode == restore {
		// No boot: the guest's clocks continue the template's. Its agent's
		// steps are placed by their distance to READY on its own clock.
		r.Phases = append(r.Phases, drivers.Phase{Name: "restore", At: i.restored})
		r.Phases = append(r.Phases, r.StepPhases(func(sec float64) time.Time {
			return r.At.Add(-time.Duration((r.Guest.MonoSec - sec) * float64(time.Second)))
		})...)
		return r, nil
	}
	r.GuestBoot = GuestBoot(r.Guest)
	return r, nil
}

// Dial connects from the peer namespace to the guest's port over the tap
// and the guest's NIC (virtio-net, or e1000 with devices=emulated); without
// network=tap there is no path and it returns ErrNotApplicable.
func (i *instance) Dial(ctx context.Context, port string) (net.Conn, error) {
	return i.path.Dial(ctx, port)
}

// PeerAddr and StartAtPeer serve host programs over the same path as Dial.
func (i *instance) PeerAddr(port string) (string, error) { return i.path.PeerAddr(port) }
func (i *instance) StartAtPeer(cmd *exec.Cmd) error      { return i.path.StartAtPeer(cmd) }

// WritableUsage returns the footprint of the instance's disk overlay, or
// ErrNotApplicable when the VM has no disk.
func (i *instance) WritableUsage() (images.Usage, error) {
	if i.disk == "" {
		return images.Usage{}, drivers.ErrNotApplicable
	}
	return images.DiskUsage(i.disk)
}

// MemoryParts splits QEMU's resident memory into the guest RAM mapping
// (found in smaps by its size) and the VMM's own overhead.
func (i *instance) MemoryParts() (map[string]int64, error) {
	return MemoryParts(int32(i.p.Pid()), i.ramBytes, i.ramFile)
}

// MemoryParts splits the resident memory of QEMU process pid, whose guest
// has ramBytes of RAM (anonymous, or mapped from ramFile), into the guest
// RAM it touched and the VMM's own overhead.
func MemoryParts(pid int32, ramBytes int64, ramFile string) (map[string]int64, error) {
	ram, total, err := guestRAMResident(context.Background(), pid, ramBytes, ramFile)
	if err != nil {
		return nil, err
	}
	return map[string]int64{"guest_ram_configured": ramBytes, "guest_ram_resident": ram, "vmm_overhead": total - ram}, nil
}

// guestRAMResident returns, from the process's smaps (read by gopsutil),
// the Rss of its first mapping of exactly ramBytes with path ramFile (""
// for anonymous memory), the guest's RAM, and the Rss of all its
// mappings.
func guestRAMResident(ctx context.Context, pid int32, ramBytes int64, ramFile string) (ram, total int64, err error) {
	maps, err := (&process.Process{Pid: pid}).MemoryMapsWithContext(ctx, false)
	if err != nil {
		return 0, 0, fmt.Errorf("qemu: smaps of process %d: %w", pid, err)
	}
	found := false
	for _, m := range *maps {
		total += int64(m.Rss) << 10
		if !found && m.Path == ramFile && int64(m.Size)<<10 == ramBytes {
			ram, found = int64(m.Rss)<<10, true
		}
	}
	if !found {
		return 0, total, fmt.Errorf("qemu: no guest RAM mapping of %d bytes in the smaps of process %d", ramBytes, pid)
	}
	return ram, total, nil
}

// Stop asks the guest to power off (STOP on the console), then QEMU to quit
// (QMP), then kills it; then it removes the instance directory.
func (i *instance) Stop(ctx context.Context) error {
	return i.undo.RunAfter(func() error {
		// A VM disk image has no agent to power it off.
		if i.mode != firmware {
			_, _ = i.console.Write([]byte(vminit.StopCommand + "\n"))
			if i.waitExit(ctx, Grace) {
				return nil
			}
		}
		<-i.vmReady
		if i.mon != nil {
			qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_ = i.mon.quit(qctx)
			cancel()
		}
		i.waitExit(ctx, Grace)
		return nil
	})
}

// waitExit waits up to d for QEMU to exit.
func (i *instance) waitExit(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-i.p.Exited():
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// kill kills QEMU if it still runs, waits for watchVMM to end and closes
// its QMP connection.
func (i *instance) kill() error {
	_ = i.p.Kill()
	<-i.vmReady
	if i.mon != nil {
		i.mon.close()
	}
	return nil
}
