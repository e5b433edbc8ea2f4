// Package vminit is what the agent does as PID 1 of a virtbench VM's
// initramfs: mount /proc, /sys and /dev, load the kernel modules the
// initramfs lists (in dependency order), mount the instance's disk on /tmp
// when it has one, and, when the workload is over, power the guest off.
// The host asks for the power-off by writing STOP on the console.
package vminit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"virtbench/guest"
	"virtbench/guest/internal/netif"
	"virtbench/internal/tools"
)

// ModulesDir holds, per module the guest may need, a file listing the
// module files it takes, one per line in load order (dependencies first).
const ModulesDir = "/etc/virtbench/modules.d"

// ModulesParam is the kernel command-line parameter naming, comma
// separated, the modules of ModulesDir the guest's devices need.
const ModulesParam = "virtbench.modules"

// StopCommand is the console line that asks the agent to stop.
const StopCommand = "STOP"

// DiskDevices are the block devices a VM may have: virtio disks, or
// emulated IDE/SATA ones. The one labelled ScratchLabel is the instance's
// disk, mounted on /tmp; the one labelled tools.DiskLabel is the shared
// tools disk, mounted read-only on tools.Dir.
var DiskDevices = []string{"/dev/vda", "/dev/vdb", "/dev/vdc", "/dev/sda", "/dev/sdb", "/dev/sdc"}

// ScratchLabel is the ext4 label of the instance's disk.
const ScratchLabel = "virtbench"

// ServiceLabel is the ext4 label of a service's disk: the root of its
// image, which Setup serves under ServiceRoot.
const ServiceLabel = "vbservice"

// ServiceRoot is where Setup makes a service's root: its disk, read-only,
// beneath a writable tmpfs layer, with /proc, /sys and /dev mounted in it
// (Kata's way: the image's root under the VM's own kernel and init).
const ServiceRoot = "/service"

// DisksParam is the kernel command-line parameter giving the number of
// disks the VM has, which the guest waits for: the devices of freshly
// loaded drivers appear asynchronously, and in no fixed order.
const DisksParam = "virtbench.disks"

// MarkerFile exists only in a virtbench initramfs.
const MarkerFile = "/etc/virtbench/initramfs"

// IsInit reports whether the agent runs as PID 1 of a virtbench VM: PID 1
// with the initramfs marker (a container's init is PID 1 too, on a root
// filesystem without the marker).
func IsInit() bool {
	if os.Getpid() != 1 {
		return false
	}
	_, err := os.Stat(MarkerFile)
	return err == nil
}

// Setup mounts the pseudo filesystems, loads modules and then either
// switches to the root file system named by virtbench.root= on the kernel
// command line (a full OS guest: it does not return) or mounts the
// instance's disk, if any, on /tmp.
func Setup() error {
	if err := setupEarly(); err != nil {
		return err
	}
	if root := CmdlineValue("virtbench.root"); root != "" {
		return switchRoot(root)
	}
	if err := setupNetwork(); err != nil {
		return err
	}
	return mountScratch()
}

// IPParam is the kernel command-line parameter that gives the guest's NIC
// an address, as ADDR/PREFIX (drivers/qemu sets it with network=tap).
const IPParam = "virtbench.ip"

// setupNetwork brings loopback up and, when the command line carries
// IPParam, gives the NIC that address, brings it up and lets the agent's
// servers listen on every address.
func setupNetwork() error {
	if err := netif.Up("lo"); err != nil {
		return fmt.Errorf("vm init: %w", err)
	}
	v := CmdlineValue(IPParam)
	if v == "" {
		return nil
	}
	return setAddress(v)
}

// waitForNIC returns the first network interface other than loopback,
// waiting up to d for its driver to register it.
func waitForNIC(d time.Duration) (string, error) {
	for end := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		names, _ := os.ReadDir("/sys/class/net")
		for _, n := range names {
			if n.Name() != "lo" {
				return n.Name(), nil
			}
		}
		if time.Now().After(end) {
			return "", fmt.Errorf("vm init: %s is set but no network interface appeared within %v", IPParam, d)
		}
	}
}

func setupEarly() error {
	mounts := []struct{ src, target, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return fmt.Errorf("vm init: %w", err)
		}
		if err := unix.Mount(m.src, m.target, m.fstype, unix.MS_NOSUID, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("vm init: mount %s: %w", m.target, err)
		}
	}
	return loadModules()
}

// mountScratch mounts the instance's disk on /tmp, or a tmpfs when the
// VM has none; then the shared disks, if any (mountShared).
func mountScratch() error {
	if err := os.MkdirAll("/tmp", 0o1777); err != nil {
		return fmt.Errorf("vm init: %w", err)
	}
	dev := diskLabelled(ScratchLabel)
	if dev == "" {
		if err := mountTmpfs(); err != nil {
			return err
		}
		return mountShared()
	}
	if err := unix.Mount(dev, "/tmp", "ext4", 0, ""); err != nil {
		return fmt.Errorf("vm init: mount %s on /tmp: %w", dev, err)
	}
	return mountShared()
}

// mountShared mounts the disks every VM of a workload shares: the tools
// disk and the service disk, where the VM has them.
func mountShared() error {
	if err := mountTools(); err != nil {
		return err
	}
	return mountService()
}

// mountService makes ServiceRoot when the VM has a service disk and it is
// not made yet: the disk read-only as the lower layer of an overlay whose
// upper layer is a tmpfs, and /proc, /sys and /dev within.
func mountService() error {
	dev := diskLabelled(ServiceLabel)
	if dev == "" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(ServiceRoot, "proc", "self")); err == nil {
		return nil
	}
	lower, rw := ServiceRoot+".lower", ServiceRoot+".rw"
	for _, d := range []string{ServiceRoot, lower, rw} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("vm init: %w", err)
		}
	}
	if err := unix.Mount(dev, lower, "ext4", unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("vm init: mount the service disk %s: %w", dev, err)
	}
	if err := unix.Mount("tmpfs", rw, "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("vm init: mount the service's writable layer: %w", err)
	}
	upper, work := filepath.Join(rw, "upper"), filepath.Join(rw, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("vm init: %w", err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := unix.Mount("overlay", ServiceRoot, "overlay", 0, opts); err != nil {
		return fmt.Errorf("vm init: mount the service's root: %w", err)
	}
	for _, m := range []struct{ src, target, fstype string }{{"proc", "proc", "proc"}, {"sysfs", "sys", "sysfs"}, {"devtmpfs", "dev", "devtmpfs"}} {
		target := filepath.Join(ServiceRoot, m.target)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("vm init: %w", err)
		}
		if err := unix.Mount(m.src, target, m.fstype, unix.MS_NOSUID, ""); err != nil {
			return fmt.Errorf("vm init: mount the service's %s: %w", m.target, err)
		}
	}
	return nil
}

// mountTools mounts the tools disk read-only on tools.Dir when the VM has
// one and it is not mounted yet (a restored VM's template mounted it).
func mountTools() error {
	dev := diskLabelled(tools.DiskLabel)
	if dev == "" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(tools.Dir, "bin")); err == nil {
		return nil
	}
	if err := os.MkdirAll(tools.Dir, 0o755); err != nil {
		return fmt.Errorf("vm init: %w", err)
	}
	if err := unix.Mount(dev, tools.Dir, "ext4", unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("vm init: mount the tools disk %s on %s: %w", dev, tools.Dir, err)
	}
	return nil
}

// diskLabelled returns the disk of DiskDevices whose ext4 file system has
// label, or "".
func diskLabelled(label string) string {
	for _, dev := range DiskDevices {
		if ext4Label(dev) == label {
			return dev
		}
	}
	return ""
}

// ext4Label returns the volume label of the ext2/3/4 file system on dev,
// read from its superblock (1024 bytes in: the magic 0xEF53 at 56, the
// label at 120), or "" when dev holds none.
func ext4Label(dev string) string {
	f, err := os.Open(dev)
	if err != nil {
		return ""
	}
	defer f.Close()
	sb := make([]byte, 136)
	if _, err := f.ReadAt(sb, 1024); err != nil || sb[56] != 0x53 || sb[57] != 0xEF {
		return ""
	}
	label := sb[120:136]
	if i := bytes.IndexByte(label, 0); i >= 0 {
		label = label[:i]
	}
	return string(label)
}

// mountTmpfs mounts a tmpfs on /tmp.
func mountTmpfs() error {
	if err := os.MkdirAll("/tmp", 0o1777); err != nil {
		return fmt.Errorf("vm init: %w", err)
	}
	if err := unix.Mount("tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return fmt.Errorf("vm init: mount /tmp: %w", err)
	}
	return nil
}

// loadModules loads the modules ModulesParam names, with their
// dependencies; one already loaded (a shared dependency) is skipped.
func loadModules() error {
	for _, name := range strings.Split(CmdlineValue(ModulesParam), ",") {
		if name == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(ModulesDir, name))
		if err != nil {
			return fmt.Errorf("vm init: module %s: %w", name, err)
		}
		for _, path := range strings.Fields(string(b)) {
			f, err := os.Open(path)
			if err != nil {
				return fmt.Errorf("vm init: module: %w", err)
			}
			err = unix.FinitModule(int(f.Fd()), "", 0)
			f.Close()
			if err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("vm init: load %s: %w", path, err)
			}
		}
	}
	waitForDisk(5 * time.Second)
	return nil
}

// waitForDisk waits up to d for the VM's disks to appear when the machine
// has a disk controller: as many as DisksParam says, else one.
func waitForDisk(d time.Duration) {
	if !hasDiskController() {
		return
	}
	want, err := strconv.Atoi(CmdlineValue(DisksParam))
	if err != nil || want < 1 {
		want = 1
	}
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		n := 0
		for _, dev := range DiskDevices {
			if _, err := os.Stat(dev); err == nil {
				n++
			}
		}
		if n >= want {
			return
		}
	}
}

// hasDiskController reports whether a virtio block device or an ATA port
// with a disk was found on the bus.
func hasDiskController() bool {
	vb, _ := filepath.Glob("/sys/bus/virtio/drivers/virtio_blk/virtio*")
	sd, _ := filepath.Glob("/sys/bus/scsi/devices/*:*:*:*")
	return len(vb) > 0 || len(sd) > 0
}

// CmdlineValue returns the value of key=value on the kernel command line,
// or "".
func CmdlineValue(key string) string {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return ""
	}
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// switchRoot mounts dev as the new root and executes its /sbin/init, as
// an initramfs hands over to a full OS. It returns only on failure.
func switchRoot(dev string) error {
	const newRoot = "/newroot"
	if err := os.MkdirAll(newRoot, 0o755); err != nil {
		return fmt.Errorf("vm init: %w", err)
	}
	waitForDisk(5 * time.Second)
	if err := unix.Mount(dev, newRoot, "ext4", 0, ""); err != nil {
		return fmt.Errorf("vm init: mount root %s: %w", dev, err)
	}
	// The agent runs in the full OS as a service: install this very binary
	// (the instance's disk is a copy-on-write overlay).
	if err := copyFile("/init", newRoot+"/sbin/virtbench-guest"); err != nil {
		return fmt.Errorf("vm init: install the agent: %w", err)
	}
	for _, m := range []string{"/dev", "/proc", "/sys"} {
		if err := unix.Mount(m, newRoot+m, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("vm init: move %s: %w", m, err)
		}
	}
	if err := unix.Chdir(newRoot); err != nil {
		return fmt.Errorf("vm init: %w", err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("vm init: move root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("vm init: chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("vm init: %w", err)
	}
	err := unix.Exec("/sbin/init", []string{"/sbin/init"}, os.Environ())
	return fmt.Errorf("vm init: exec /sbin/init: %w", err)
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	os.Remove(dst)
	return os.WriteFile(dst, b, 0o755)
}

// ServiceArgs returns the agent's arguments when it runs as the service of
// a full OS guest: the comma-separated virtbench.args= of the kernel
// command line. ok is false when the agent is not such a service.
func ServiceArgs() (args []string, ok bool) {
	if os.Getenv("VIRTBENCH_SERVICE") == "" {
		return nil, false
	}
	v := CmdlineValue("virtbench.args")
	if v == "" {
		return nil, true
	}
	return strings.Split(v, ","), true
}

// Nonce returns the nonce of a VM's protocol lines: guest.NonceParam on
// the kernel command line (for a snapshot's clones it comes in their
// Workload instead).
func Nonce() guest.Nonce { return guest.Nonce(CmdlineValue(guest.NonceParam)) }

// ServicePowerOff asks the full OS guest's init to power off, and powers
// off directly if that fails.
func ServicePowerOff() error {
	unix.Sync()
	if err := exec.Command("systemctl", "poweroff", "--no-block").Run(); err == nil {
		return nil
	}
	return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// WatchConsole returns a function that makes a context cancelled when
// StopCommand is read from console (the console: stdin, after what was
// read with the workload's line).
func WatchConsole(console io.Reader) func(context.Context) (context.Context, context.CancelFunc) {
	return func(parent context.Context) (context.Context, context.CancelFunc) {
		return watch(parent, console)
	}
}

func watch(parent context.Context, console io.Reader) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		sc := bufio.NewScanner(console)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == StopCommand {
				cancel()
				return
			}
		}
	}()
	return ctx, cancel
}

// PowerOff flushes the file systems and powers the guest off. It does not
// return unless the power-off fails.
func PowerOff() error {
	unix.Sync()
	_ = unix.Unmount("/tmp", 0)
	return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}
