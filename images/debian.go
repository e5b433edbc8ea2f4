package images

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// DebianSuite is the Debian release of the "debian" image profile.
const DebianSuite = "bookworm"

// DebianMirror is where debootstrap fetches packages: Debian's own
// archive, the registry this host's apt uses.
const DebianMirror = "http://deb.debian.org/debian"

// debianPackages are added to debootstrap's minbase: an init system, so the
// guest boots like a traditional VM, and what it needs to mount its disk.
var debianPackages = []string{"systemd-sysv", "udev", "kmod", "e2fsprogs"}

// DebianBase returns the Debian root filesystem in cacheDir/debian,
// making it with debootstrap the first time (minutes; it is then reused).
func DebianBase(cacheDir string) (string, error) {
	dir := filepath.Join(cacheDir, "debian", DebianSuite+"-v1")
	done := filepath.Join(dir, ".virtbench-complete")
	if _, err := os.Stat(done); err == nil {
		return filepath.Join(dir, "rootfs"), nil
	}
	// One build at a time: tests of several packages may ask at once.
	unlock, err := lock(filepath.Join(cacheDir, "debian.lock"))
	if err != nil {
		return "", fmt.Errorf("images: debian: %w", err)
	}
	defer unlock()
	if _, err := os.Stat(done); err == nil {
		return filepath.Join(dir, "rootfs"), nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", errors.New("images: debian: debootstrap is not installed (apt-get install debootstrap)")
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("images: debian: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("images: debian: %w", err)
	}
	root := filepath.Join(dir, "rootfs")
	cmd := exec.Command("debootstrap", "--variant=minbase", "--include="+strings.Join(debianPackages, ","), DebianSuite, root, DebianMirror)
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("images: debian: debootstrap: %v: %s", err, lastLines(string(out), 5))
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		return "", fmt.Errorf("images: debian: %w", err)
	}
	return root, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ServiceUnit starts the agent in a Debian guest as a systemd service on the
// serial console; the agent takes its workload from the kernel command line
// (virtbench.args=) and powers the guest off when told to stop.
const ServiceUnit = `[Unit]
Description=virtbench guest agent
After=local-fs.target

[Service]
Type=simple
Environment=VIRTBENCH_SERVICE=1
ExecStart=/sbin/virtbench-guest
StandardInput=tty
StandardOutput=tty
StandardError=journal
TTYPath=/dev/ttyS0
TTYReset=no
TTYVHangup=no

[Install]
WantedBy=multi-user.target
`

// BuildAgentLayer returns a directory, cached per agent, that adds the
// agent and its service to a Debian root filesystem when stacked on top of
// it (an overlay lower layer, or merged into a disk image): the agent at
// AgentPath, the unit enabled for multi-user.target, and the serial getty
// masked so the agent owns the console.
func BuildAgentLayer(cacheDir, agent string) (string, error) {
	sum, err := fileHash(agent)
	if err != nil {
		return "", fmt.Errorf("images: agent layer: %w", err)
	}
	dir := filepath.Join(cacheDir, "agent-layer", sum[:16])
	if _, err := os.Stat(filepath.Join(dir, AgentPath)); err == nil {
		return dir, nil
	}
	tmp := dir + fmt.Sprintf(".tmp-%d", os.Getpid())
	os.RemoveAll(tmp)
	defer os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Join(tmp, "sbin"), 0o755); err != nil {
		return "", fmt.Errorf("images: agent layer: %w", err)
	}
	if err := copyFile(agent, filepath.Join(tmp, AgentPath), 0o755); err != nil {
		return "", fmt.Errorf("images: agent layer: %w", err)
	}
	if err := writeService(tmp); err != nil {
		return "", fmt.Errorf("images: agent layer: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("images: agent layer: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, AgentPath)); serr == nil {
			return dir, nil
		}
		return "", fmt.Errorf("images: agent layer: %w", err)
	}
	return dir, nil
}

// writeService installs the agent's unit in the tree at root, enabled for
// multi-user.target, and masks the serial getty so the agent owns the
// console.
func writeService(root string) error {
	sys := filepath.Join(root, "etc/systemd/system")
	if err := os.MkdirAll(filepath.Join(sys, "multi-user.target.wants"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(sys, "virtbench.service"), []byte(ServiceUnit), 0o644); err != nil {
		return err
	}
	links := [][2]string{
		{"../virtbench.service", filepath.Join(sys, "multi-user.target.wants/virtbench.service")},
		{"/dev/null", filepath.Join(sys, "serial-getty@ttyS0.service")},
	}
	for _, l := range links {
		os.Remove(l[1])
		if err := os.Symlink(l[0], l[1]); err != nil {
			return err
		}
	}
	return nil
}

// DebianDiskBytes is the size of the Debian guest's root disk: sparse, so
// it allocates only what the file system uses.
const DebianDiskBytes = 4 << 30

// BuildDebianDisk returns an ext4 disk image (raw, sparse, DebianDiskBytes)
// of the Debian base with the agent's service installed. The agent itself
// is not on the disk: the initramfs copies itself there at boot (see
// guest/vminit), so one disk serves every agent build.
func BuildDebianDisk(cacheDir, base string) (string, error) {
	path := filepath.Join(cacheDir, "disk", "debian-"+DebianSuite+"-v1.raw")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	unlock, err := lock(path + ".lock")
	if err != nil {
		return "", fmt.Errorf("images: debian disk: %w", err)
	}
	defer unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	staging, err := os.MkdirTemp(cacheDir, ".debian-disk-")
	if err != nil {
		return "", fmt.Errorf("images: debian disk: %w", err)
	}
	defer os.RemoveAll(staging)
	// cp -a keeps owners, modes, links and device nodes.
	if out, err := exec.Command("cp", "-a", base+"/.", staging).CombinedOutput(); err != nil {
		return "", fmt.Errorf("images: debian disk: cp: %v: %s", err, out)
	}
	if err := writeService(staging); err != nil {
		return "", fmt.Errorf("images: debian disk: %w", err)
	}
	if err := makeExt4(path, DebianDiskBytes, "debian", staging); err != nil {
		return "", err
	}
	return path, nil
}

// lock takes an exclusive lock on path (created if needed) and returns the
// function that releases it.
func lock(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
