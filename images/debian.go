package images

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// DebianSuite is the Debian release of the "debian" image profile.
const DebianSuite = "bookworm"

// DefaultDebianMirror is Debian's own archive: where debootstrap fetches
// packages when neither MirrorEnv nor the host's apt names another.
const DefaultDebianMirror = "http://deb.debian.org/debian"

// MirrorEnv, when set, is the Debian mirror debootstrap fetches from.
const MirrorEnv = "VIRTBENCH_DEBIAN_MIRROR"

// AptSources is where the host's apt keeps its sources.
const AptSources = "/etc/apt"

// DebianMirror returns the mirror debootstrap fetches DebianSuite from:
// $VIRTBENCH_DEBIAN_MIRROR, else the first source of the host's apt (under
// aptDir: sources.list, sources.list.d/*.list in one-line form, *.sources
// in deb822 form) that serves the suite's main component, else
// DefaultDebianMirror. A user behind a mirror or a caching proxy that apt
// already uses gets it without saying so.
func DebianMirror(aptDir string) string {
	if m := os.Getenv(MirrorEnv); m != "" {
		return m
	}
	files := []string{filepath.Join(aptDir, "sources.list")}
	for _, pat := range []string{"*.list", "*.sources"} {
		m, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", pat))
		files = append(files, m...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		parse := oneLineSources
		if strings.HasSuffix(f, ".sources") {
			parse = deb822Sources
		}
		for _, s := range parse(string(b)) {
			if slices.Contains(s.suites, DebianSuite) && slices.Contains(s.components, "main") {
				return s.uri
			}
		}
	}
	return DefaultDebianMirror
}

// aptSource is one apt source of binary packages.
type aptSource struct {
	uri                string
	suites, components []string
}

// oneLineSources parses sources.list lines: deb [options] URI SUITE COMPONENT...
func oneLineSources(text string) []aptSource {
	var out []aptSource
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) >= 3 {
			out = append(out, aptSource{uri: f[0], suites: f[1:2], components: f[2:]})
		}
	}
	return out
}

// deb822Sources parses .sources stanzas (Types, URIs, Suites, Components),
// skipping those with Enabled: no.
func deb822Sources(text string) []aptSource {
	var out []aptSource
	for _, stanza := range strings.Split(text, "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") {
				continue
			}
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if !slices.Contains(strings.Fields(fields["types"]), "deb") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			out = append(out, aptSource{uri: uri, suites: strings.Fields(fields["suites"]), components: strings.Fields(fields["components"])})
		}
	}
	return out
}

// debianPackages are added to debootstrap's minbase: an init system, so the
// guest boots like a traditional VM, and what it needs to mount its disk.
var debianPackages = []string{"systemd-sysv", "udev", "kmod", "e2fsprogs"}

// DebianBase returns the Debian root filesystem in cacheDir/debian,
// making it with debootstrap the first time (minutes; it is then reused).
func DebianBase(cacheDir string) (string, error) {
	return debootstrapped(cacheDir, "debian", debianPackages)
}

// FleetHostPackages are added to debootstrap's minbase for a test host of
// a campaign: Python, which Ansible's modules run on.
var FleetHostPackages = []string{"python3"}

// FleetHostBase returns the root filesystem of a campaign's test host (a
// Debian that Ansible can manage) in cacheDir/fleet-host, making it with
// debootstrap the first time.
func FleetHostBase(cacheDir string) (string, error) {
	return debootstrapped(cacheDir, "fleet-host", FleetHostPackages)
}

// debootstrapped returns the root filesystem cacheDir/name/SUITE-v1/rootfs,
// debootstrap's minbase of DebianSuite with packages, making it the first
// time (minutes; it is then reused).
func debootstrapped(cacheDir, name string, packages []string) (string, error) {
	dir := filepath.Join(cacheDir, name, DebianSuite+"-v1")
	done := filepath.Join(dir, ".virtbench-complete")
	if _, err := os.Stat(done); err == nil {
		return filepath.Join(dir, "rootfs"), nil
	}
	// One build at a time: tests of several packages may ask at once.
	unlock, err := lock(filepath.Join(cacheDir, name+".lock"))
	if err != nil {
		return "", fmt.Errorf("images: %s: %w", name, err)
	}
	defer unlock()
	if _, err := os.Stat(done); err == nil {
		return filepath.Join(dir, "rootfs"), nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", fmt.Errorf("images: %s: debootstrap is not installed (apt-get install debootstrap)", name)
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("images: %s: %w", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("images: %s: %w", name, err)
	}
	root := filepath.Join(dir, "rootfs")
	cmd := exec.Command("debootstrap", "--variant=minbase", "--include="+strings.Join(packages, ","), DebianSuite, root, DebianMirror(AptSources))
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("images: %s: debootstrap: %v: %s", name, err, lastLines(string(out), 5))
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		return "", fmt.Errorf("images: %s: %w", name, err)
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
