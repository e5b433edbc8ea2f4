package vminit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"virtbench/guest"
	"virtbench/guest/internal/netif"
)

// SnapshotParam, set to 1 on the kernel command line, makes the agent a
// snapshot template: it sets the guest up as far as no instance differs
// (file systems, modules), prints WaitingLine and waits on the console
// for its Workload. The host saves the VM while it waits; every VM
// restored from that state receives a Workload of its own.
const SnapshotParam = "virtbench.snapshot"

// WaitingLine is what a snapshot template prints once it waits.
const WaitingLine = "virtbench: waiting for a workload"

// WorkloadCommand starts the console line that carries a Workload as JSON.
const WorkloadCommand = "WORKLOAD"

// MaxWorkloadLine is the longest Workload line a restored guest reads.
const MaxWorkloadLine = 1 << 16

// Workload is what the host sends a VM restored from a snapshot: what
// every clone of the template would otherwise share.
type Workload struct {
	// Args are the agent's arguments: the workload and its flags.
	Args []string `json:"args"`
	// Nonce marks the instance's protocol lines (guest.Nonce): the
	// template's own is every clone's.
	Nonce guest.Nonce `json:"nonce,omitempty"`
	// IP is the NIC's address, ADDR/PREFIX, when the VM has a network path.
	IP string `json:"ip,omitempty"`
	// Seed is entropy for the kernel's random pool: clones of one
	// snapshot start with the same pool.
	Seed []byte `json:"seed"`
	// Disk says whether the workload uses the disk (mounted on /tmp); a
	// snapshot's VMs all have one, as the template did.
	Disk bool `json:"disk,omitempty"`
	// Rest is what the console held after the line, read with it: the
	// start of a STOP written at once. The console's watcher reads it
	// first (WatchConsole).
	Rest []byte `json:"-"`
}

// FromSnapshot reports whether this VM booted as a snapshot template. It
// mounts /proc to read the kernel command line when it is not yet: the
// kernel keeps dotted parameters from init's environment.
func FromSnapshot() bool {
	if _, err := os.Stat("/proc/cmdline"); err != nil {
		_ = os.MkdirAll("/proc", 0o755)
		_ = unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID, "")
	}
	return CmdlineValue(SnapshotParam) == "1"
}

// The steps of a restored VM's agent before its workload (AwaitWorkload's
// step), which the host shows as phases of its start.
const (
	// StepWake ends when the first byte of the Workload line arrived: the
	// restored guest ran again and its console delivered.
	StepWake = "wake"
	// StepConsole ends when the whole line was read.
	StepConsole = "console"
	// StepVMSetup ends when the entropy was credited and the NIC and the
	// disk (or /tmp's tmpfs) were set up.
	StepVMSetup = "vm_setup"
)

// AwaitWorkload sets up what every clone shares (file systems, modules,
// loopback up, a tmpfs on /tmp), turns the console's echo
// off (the Workload line carries the clone's entropy, which must not come
// back on the console into the host's logs), prints WaitingLine, reads the
// Workload from console, credits its seed to the kernel's random pool,
// then sets up the NIC and mounts the disk on /tmp where the workload
// uses it, and returns the Workload. step is
// called as each of StepWake, StepConsole and StepVMSetup ends. Its Nonce
// is valid when the error is nil.
func AwaitWorkload(console *os.File, out io.Writer, step func(name string)) (Workload, error) {
	if err := setupEarly(); err != nil {
		return Workload{}, err
	}
	if err := netif.Up("lo"); err != nil {
		return Workload{}, fmt.Errorf("vm init: %w", err)
	}
	if err := mountTmpfs(); err != nil {
		return Workload{}, err
	}
	// Every clone has the template's tools and service disks, which no
	// clone writes.
	if err := mountShared(); err != nil {
		return Workload{}, err
	}
	if err := rawConsole(console); err != nil {
		return Workload{}, err
	}
	warmCaches()
	fmt.Fprintln(out, WaitingLine)
	line, rest, err := readLine(console, func() { step(StepWake) })
	step(StepConsole)
	if err != nil {
		return Workload{}, fmt.Errorf("vm init: waiting for a workload: %w", err)
	}
	w, err := ParseWorkload(line)
	w.Rest = rest
	if err != nil {
		return w, err
	}
	if err := addEntropy(w.Seed); err != nil {
		return w, err
	}
	if w.IP != "" {
		if err := setAddress(w.IP); err != nil {
			return w, err
		}
	}
	if w.Disk {
		// Over the template's tmpfs.
		err = mountScratch()
	}
	step(StepVMSetup)
	return w, err
}

// warmCaches runs, in the template before it is saved, the code a clone
// runs after its restore that builds caches in the guest's memory:
// encoding/json's, for the workload's line and for READY. The caches are
// saved with the template, so every clone starts with them and is spared
// building them in a translation cache that starts empty under TCG (the
// workload line's first decoding took 27 ms of a clone's start there).
func warmCaches() {
	line, err := FormatWorkload(Workload{Args: []string{guest.IdleWorkload}, Nonce: "0000000000000000", IP: "10.0.0.1/30", Seed: make([]byte, 32), Disk: true})
	if err == nil {
		_, _ = ParseWorkload(string(line))
	}
	guest.Nonce("0000000000000000").Format(guest.KindReady, guest.Ready{Workload: guest.IdleWorkload, UptimeSec: 1, Kernel: "k", Mitigations: "m",
		Setup: []guest.Milestone{{Name: StepWake, Sec: 1}}, MonoSec: 1})
}

// rawConsole turns off the terminal's echo and line editing on console:
// nothing written to the guest comes back, and a line is not limited to
// the line discipline's 4095 bytes. A console that is not a terminal (a
// pipe in tests) is left as it is.
func rawConsole(console *os.File) error {
	fd := int(console.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vm init: console: %w", err)
	}
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ECHOE | unix.ECHOK | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Iflag &^= unix.ICRNL | unix.INLCR | unix.IGNCR | unix.IXON
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("vm init: console: %w", err)
	}
	return nil
}

// FormatWorkload returns the console line that carries w.
func FormatWorkload(w Workload) ([]byte, error) {
	b, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	return append(append([]byte(WorkloadCommand+" "), b...), '\n'), nil
}

// ParseWorkload reads a console line written by FormatWorkload.
func ParseWorkload(line string) (Workload, error) {
	var w Workload
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), WorkloadCommand+" ")
	if !ok {
		return w, fmt.Errorf("vm init: expected %s {...} on the console, got %q", WorkloadCommand, line)
	}
	if err := json.Unmarshal([]byte(rest), &w); err != nil {
		return w, fmt.Errorf("vm init: %s: %w", WorkloadCommand, err)
	}
	if len(w.Args) == 0 {
		return w, errors.New("vm init: the workload has no arguments")
	}
	if !w.Nonce.Valid() {
		return w, fmt.Errorf("vm init: %s: nonce %q is not 16 hex digits", WorkloadCommand, w.Nonce)
	}
	return w, nil
}

// readLine reads up to a newline and returns the line and what was read
// after it (rest: the console's watcher reads it first); first is called
// once the first bytes arrived. It reads what the console holds at each
// read, not a byte at a time: a restored VM's every system call runs
// through a translation cache that starts empty under TCG.
func readLine(r io.Reader, first func()) (line string, rest []byte, err error) {
	var b []byte
	buf := make([]byte, 512)
	for len(b) <= MaxWorkloadLine {
		n, err := r.Read(buf)
		if n > 0 && first != nil {
			first()
			first = nil
		}
		b = append(b, buf[:n]...)
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return string(b[:i]), b[i+1:], nil
		}
		if err != nil {
			return string(b), nil, err
		}
	}
	return "", nil, errors.New("line too long")
}

// addEntropy mixes seed into the kernel's random pool and credits it
// (RNDADDENTROPY), so that the pool reseeds and clones diverge.
func addEntropy(seed []byte) error {
	if len(seed) == 0 {
		return nil
	}
	f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("vm init: %w", err)
	}
	defer f.Close()
	// struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
	info := make([]byte, 8+len(seed))
	*(*int32)(unsafe.Pointer(&info[0])) = int32(8 * len(seed))
	*(*int32)(unsafe.Pointer(&info[4])) = int32(len(seed))
	copy(info[8:], seed)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDADDENTROPY, uintptr(unsafe.Pointer(&info[0]))); errno != 0 {
		return fmt.Errorf("vm init: RNDADDENTROPY: %w", errno)
	}
	return nil
}

// setAddress gives the NIC the address v (ADDR/PREFIX) and brings it up.
func setAddress(v string) error {
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return fmt.Errorf("vm init: address %q: %w", v, err)
	}
	nic, err := waitForNIC(time.Second)
	if err != nil {
		return err
	}
	if err := netif.SetAddr(nic, p); err != nil {
		return fmt.Errorf("vm init: %w", err)
	}
	if err := netif.Up(nic); err != nil {
		return fmt.Errorf("vm init: %w", err)
	}
	return os.Setenv(guest.ListenEnv, ":0")
}
