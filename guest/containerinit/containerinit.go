// Package containerinit is what the agent does first when it is a
// container's init (drivers/container starts it that way): in the new
// namespaces and cgroup the driver created it reads its configuration,
// mounts the overlay root filesystem, /proc, a read-only /sys and a
// minimal /dev, pivots into the new root, sets the hostname, brings up
// loopback, and drops privileges (Docker's default capabilities,
// no_new_privs). Then the agent runs its workload as PID 1.
//
// The agent must be built with CGO_ENABLED=0: privileges are dropped on
// every thread with syscall.AllThreadsSyscall, which cgo rules out.
package containerinit

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"virtbench/guest"
	"virtbench/guest/internal/netif"
)

// EnvFD names the environment variable that carries the number of the file
// descriptor on which the host writes the Config. Its presence makes the
// agent a container init.
const EnvFD = "VIRTBENCH_CONTAINER_FD"

// Config is what the host tells the container init, Encoded on the config
// descriptor. The host closes the descriptor when everything the workload
// needs from outside is in place (at once, or once the network link
// exists); the init reads to EOF before doing anything else.
type Config struct {
	// Lower is the read-only base root filesystem: one host path, or
	// several separated by ':' (upper layers first), as overlayfs takes them.
	Lower string
	// Upper and Work are the instance's writable layer and overlayfs work
	// directory; Merged is the (empty) mount point of the overlay.
	Upper  string
	Work   string
	Merged string
	// Hostname is the UTS name inside the container.
	Hostname string
	// UserNS is set when the container runs in its own user namespace;
	// device nodes are then bind-mounted from the host instead of created.
	UserNS bool
}

// Encode returns c as NAME=VALUE lines, one per field: a format the init
// parses without reflection (encoding/json's first use in a process costs
// about 0.1 ms). No value may hold a newline.
func (c Config) Encode() ([]byte, error) {
	var b []byte
	for _, f := range c.fields() {
		if strings.ContainsRune(*f.v, '\n') {
			return nil, fmt.Errorf("container init: config %s %q holds a newline", f.name, *f.v)
		}
		b = fmt.Appendf(b, "%s=%s\n", f.name, *f.v)
	}
	if c.UserNS {
		b = append(b, "userns=true\n"...)
	}
	return b, nil
}

// DecodeConfig parses what Encode wrote.
func DecodeConfig(b []byte) (Config, error) {
	var c Config
	fields := c.fields()
	for line := range strings.Lines(string(b)) {
		name, value, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		if !ok {
			return Config{}, fmt.Errorf("container init: config line %q: no '='", line)
		}
		if name == "userns" {
			c.UserNS = value == "true"
			continue
		}
		i := slices.IndexFunc(fields, func(f field) bool { return f.name == name })
		if i < 0 {
			return Config{}, fmt.Errorf("container init: config: unknown field %q", name)
		}
		*fields[i].v = value
	}
	return c, nil
}

type field struct {
	name string
	v    *string
}

func (c *Config) fields() []field {
	return []field{{"lower", &c.Lower}, {"upper", &c.Upper}, {"work", &c.Work}, {"merged", &c.Merged}, {"hostname", &c.Hostname}}
}

// The stages of the init's setup, in order: Setup reports the end of each
// to step, and the host records them as start phases of the same names.
const (
	StepGoStart = "go_start"   // the agent's main began: execve and the Go runtime's start
	StepConfig  = "config"     // the configuration read from the host
	StepOverlay = "overlay"    // the overlay root filesystem mounted
	StepProc    = "proc"       // /proc and a read-only /sys mounted
	StepDev     = "dev"        // a minimal /dev made
	StepPivot   = "pivot_root" // the overlay made the root, the old root detached
	StepNet     = "net"        // the hostname set, loopback up
	StepCaps    = "caps"       // privileges dropped
)

// Steps are the stages Setup reports, in order.
var Steps = []string{StepGoStart, StepConfig, StepOverlay, StepProc, StepDev, StepPivot, StepNet, StepCaps}

// Setup performs the container init's setup, calling step with the name of
// each stage as it ends (StepGoStart first, at once). It returns an error
// naming the stage that failed; the caller reports it and exits.
func Setup(step func(name string)) error {
	step(StepGoStart)
	fdStr := os.Getenv(EnvFD)
	var fd int
	if _, err := fmt.Sscan(fdStr, &fd); err != nil || fd < 3 {
		return fmt.Errorf("container init: bad %s=%q", EnvFD, fdStr)
	}
	f := os.NewFile(uintptr(fd), "config")
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	f.Close()
	if err != nil {
		return fmt.Errorf("container init: read config: %w", err)
	}
	c, err := DecodeConfig(b)
	if err != nil {
		return err
	}
	step(StepConfig)
	stages := []struct {
		step, what string
		fn         func(*Config) error
	}{
		{StepOverlay, "mount root filesystem", mountOverlay},
		{StepProc, "mount /proc and /sys", mountProc},
		{StepDev, "mount /dev", mountDev},
		{StepPivot, "pivot_root", pivot},
		{StepNet, "bring up the network", func(c *Config) error {
			if err := unix.Sethostname([]byte(c.Hostname)); err != nil {
				return fmt.Errorf("set hostname: %w", err)
			}
			return netif.Up("lo")
		}},
		{StepCaps, "drop privileges", dropPrivileges},
	}
	for _, s := range stages {
		if err := s.fn(&c); err != nil {
			return fmt.Errorf("container init: %s: %w", s.what, err)
		}
		step(s.step)
	}
	os.Clearenv()
	os.Setenv("PATH", "/usr/bin:/bin:/sbin")
	os.Setenv("HOME", "/")
	os.Setenv("HOSTNAME", c.Hostname)
	// The container has a network namespace of its own: serve on all of it.
	os.Setenv(guest.ListenEnv, ":0")
	return nil
}

func mount(src, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(src, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", fstype, target, err)
	}
	return nil
}

func mountOverlay(c *Config) error {
	// Nothing mounted here may propagate back to the host.
	if err := mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return err
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", c.Lower, c.Upper, c.Work)
	return mount("overlay", c.Merged, "overlay", 0, opts)
}

func mountProc(c *Config) error {
	m := c.Merged
	if err := mount("proc", filepath.Join(m, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	return mount("sysfs", filepath.Join(m, "sys"), "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
}

// devices are the character devices of a minimal /dev: Docker's set.
var devices = []struct {
	name         string
	major, minor uint32
}{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

func mountDev(c *Config) error {
	dev := filepath.Join(c.Merged, "dev")
	if err := mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return err
	}
	for _, d := range devices {
		p := filepath.Join(dev, d.name)
		if c.UserNS {
			// mknod is not allowed in a user namespace; bind the host's node.
			if err := os.WriteFile(p, nil, 0o666); err != nil {
				return err
			}
			if err := mount("/dev/"+d.name, p, "", unix.MS_BIND, ""); err != nil {
				return err
			}
			continue
		}
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return fmt.Errorf("mknod %s: %w", p, err)
		}
		if err := os.Chmod(p, 0o666); err != nil {
			return err
		}
	}
	for _, d := range []string{"pts", "shm"} {
		if err := os.Mkdir(filepath.Join(dev, d), 0o755); err != nil {
			return err
		}
	}
	if err := mount("devpts", filepath.Join(dev, "pts"), "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return err
	}
	if err := mount("shm", filepath.Join(dev, "shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
		return err
	}
	links := [][2]string{{"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}}
	for _, l := range links {
		if err := os.Symlink(l[0], filepath.Join(dev, l[1])); err != nil {
			return err
		}
	}
	return nil
}

// pivot makes the overlay the root and detaches the old root, as runc does:
// pivot_root(".", ".") stacks the old root on top of the new one.
func pivot(c *Config) error {
	if err := unix.Chdir(c.Merged); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// DefaultCaps are the capabilities Docker grants a container by default.
var DefaultCaps = []uintptr{
	unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FSETID, unix.CAP_FOWNER, unix.CAP_MKNOD,
	unix.CAP_NET_RAW, unix.CAP_SETGID, unix.CAP_SETUID, unix.CAP_SETFCAP, unix.CAP_SETPCAP,
	unix.CAP_NET_BIND_SERVICE, unix.CAP_SYS_CHROOT, unix.CAP_KILL, unix.CAP_AUDIT_WRITE,
}

// SetupCaps are the capabilities the init needs for its setup beyond
// DefaultCaps (mounts, pivot_root and the hostname; loopback). A driver
// may hand them over in the inheritable set (which root's execve adds to
// the permitted set) and leave only DefaultCaps in the bounding set: the
// init then has nothing to drop from its bounding set, and each drop it
// makes costs a stop-the-world (it must reach every thread of the Go
// runtime).
var SetupCaps = []uintptr{unix.CAP_SYS_ADMIN, unix.CAP_NET_ADMIN}

// DefaultCapNames are DefaultCaps by their OCI names, in the same order.
var DefaultCapNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// dropPrivileges limits every thread to DefaultCaps (bounding, effective,
// permitted and inheritable sets) and sets no_new_privs.
func dropPrivileges(*Config) error {
	keep := map[uintptr]bool{}
	var mask [2]uint32
	for _, c := range DefaultCaps {
		keep[c] = true
		mask[c/32] |= 1 << (c % 32)
	}
	// Up to the kernel's last capability, where reading fails with EINVAL.
	// Reading this thread's set is cheap; the driver has usually dropped
	// every capability the init must not keep already.
	for c := uintptr(0); ; c++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, c, 0, 0, 0)
		if err != nil {
			break
		}
		if keep[c] || in == 0 {
			continue
		}
		if _, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, c, 0); e != 0 && e != unix.EINVAL {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, e)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: mask[0], Permitted: mask[0], Inheritable: mask[0]},
		{Effective: mask[1], Permitted: mask[1], Inheritable: mask[1]},
	}
	_, _, e := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	runtime.KeepAlive(&hdr)
	runtime.KeepAlive(&data)
	if e != 0 {
		return fmt.Errorf("capset: %w", e)
	}
	// The driver's spawner thread usually set it before the exec: every
	// thread has it then.
	if on, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err == nil && on == 1 {
		return nil
	}
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); e != 0 {
		return fmt.Errorf("no_new_privs: %w", e)
	}
	return nil
}

// IsInit reports whether the agent was started as a container init.
func IsInit() bool { return os.Getenv(EnvFD) != "" }
