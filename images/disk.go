package images

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"virtbench/guest/vminit"
)

// BaseDiskBytes is the size of the shared ext4 base disk; it is sparse, so
// an empty file system allocates a few MiB.
const BaseDiskBytes = 1 << 30

// BaseDiskPath is where BuildBaseDisk keeps the base disk.
func BaseDiskPath(cacheDir string) string {
	return filepath.Join(cacheDir, "disk", "base-ext4-v1.raw")
}

// BuildBaseDisk returns the shared ext4 base disk image, making it with
// mkfs.ext4 (e2fsprogs) if it is not cached yet.
func BuildBaseDisk(cacheDir string) (string, error) {
	path := BaseDiskPath(cacheDir)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := makeExt4(path, BaseDiskBytes, vminit.ScratchLabel, ""); err != nil {
		return "", err
	}
	return path, nil
}

// makeExt4 writes a sparse raw disk image of size bytes at path holding an
// ext4 file system labelled label, filled from the tree at from when it is
// not "". The image appears at path only once complete.
func makeExt4(path string, size int64, label, from string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	tmp := path + fmt.Sprintf(".tmp-%d", os.Getpid())
	defer os.Remove(tmp)
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("images: %w", err)
	}
	err = f.Truncate(size)
	f.Close()
	if err != nil {
		return fmt.Errorf("images: %w", err)
	}
	// No lazy init: the guest must not spend its time zeroing inode tables.
	args := []string{"-q", "-F", "-L", label, "-E", "lazy_itable_init=0,lazy_journal_init=0"}
	if from != "" {
		args = append(args, "-d", from)
	}
	out, err := exec.Command("mkfs.ext4", append(args, tmp)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("images: mkfs.ext4: %v: %s (apt-get install e2fsprogs)", err, strings.TrimSpace(string(out)))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	return nil
}

// makeExt4Of is makeExt4 of the tree at from, sized to hold it with room
// for ext4's metadata and journal (the image is sparse).
func makeExt4Of(path, label, from string) error {
	u, err := DiskUsage(from)
	if err != nil {
		return err
	}
	size := (u.Allocated*5/4 + 64<<20) &^ (1<<20 - 1)
	return makeExt4(path, size, label, from)
}

// CreateOverlay creates a qcow2 overlay at path backed by the base image
// of format (raw or qcow2; "" is raw).
func CreateOverlay(base, format, path string) error {
	if format == "" {
		format = "raw"
	}
	out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", format, "-b", base, path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("images: qemu-img create: %v: %s (apt-get install qemu-utils)", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Overlays makes empty qcow2 overlays of one base image: qemu-img
// makes the first, in Dir, and every other is a copy of its bytes. An
// empty overlay holds no path of its own and no time, only its base's
// name and size, so a copy is what qemu-img would write, without a
// qemu-img process per VM (7.6 ms each on a 2-core host, in every VM's
// start).
type Overlays struct {
	Base, Dir string
	// Format is the base's format: raw (or "") or qcow2.
	Format string

	once  sync.Once
	empty []byte
	err   error
}

// Create writes a new empty overlay of o.Base at path, which must not
// exist.
func (o *Overlays) Create(path string) error {
	o.once.Do(func() {
		first := filepath.Join(o.Dir, "empty-overlay.qcow2")
		if o.err = CreateOverlay(o.Base, o.Format, first); o.err != nil {
			return
		}
		o.empty, o.err = os.ReadFile(first)
		if rerr := os.Remove(first); o.err == nil && rerr != nil {
			o.err = fmt.Errorf("images: %w", rerr)
		}
	})
	if o.err != nil {
		return o.err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("images: overlay: %w", err)
	}
	_, err = f.Write(o.empty)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("images: overlay: %w", err)
	}
	return nil
}
