package images

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"syscall"
)

// rootfsLayout changes whenever the layout written by buildRootfs changes,
// so that cached images of an older layout are not reused.
const rootfsLayout = "rootfs-v1"

// AgentPath is where the agent lives inside every image.
const AgentPath = "/sbin/virtbench-guest"

// Rootfs is a built minimal root filesystem.
type Rootfs struct {
	// Dir is the image directory, used read-only as the base layer.
	Dir string
	// Agent is the host path of the agent inside Dir.
	Agent string
}

// BuildRootfs returns the minimal root filesystem for agent, building it in
// cacheDir/rootfs/HASH if it is not there yet. The image holds the agent,
// the directories a process expects (/proc, /sys, /dev, /tmp, /etc, …) and
// a few files of /etc; device nodes are made by the container at start.
// Files are owned by uid (and gid) owner: 0 normally, the first mapped
// host ID for containers in a user namespace, which cannot copy up files
// whose owner they cannot map.
func BuildRootfs(cacheDir, agent string, owner int) (Rootfs, error) {
	sum, err := fileHash(agent)
	if err != nil {
		return Rootfs{}, fmt.Errorf("images: rootfs: %w", err)
	}
	h := sha256.Sum256([]byte(fmt.Sprintf("%s %s owner=%d", rootfsLayout, sum, owner)))
	dir := filepath.Join(cacheDir, "rootfs", hex.EncodeToString(h[:8]))
	r := Rootfs{Dir: dir, Agent: filepath.Join(dir, AgentPath)}
	if err := buildDir(dir, r.Agent, func(tmp string) error { return buildRootfs(tmp, agent, owner) }); err != nil {
		return Rootfs{}, fmt.Errorf("images: rootfs: %w", err)
	}
	return r, nil
}

// buildDir makes the content-addressed directory dir, unless marker (a
// path inside it) exists: build fills a fresh directory beside it, which
// is then renamed into place. A directory another process finished first
// is taken as it is.
func buildDir(dir, marker string, build func(tmp string) error) error {
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := build(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(marker); serr == nil {
			return nil
		}
		return err
	}
	return nil
}

// accounts are the image's users and groups: root, and the unprivileged
// nobody that servers of the tools layer (nginx) look up when started as
// root. A VM's initramfs holds them too.
var accounts = map[string]string{
	"etc/passwd": "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n",
	"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
}

func buildRootfs(dir, agent string, owner int) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	dirs := []struct {
		path string
		mode fs.FileMode
	}{
		{"bin", 0o755}, {"sbin", 0o755}, {"dev", 0o755}, {"proc", 0o555}, {"sys", 0o555}, {"etc", 0o755},
		{"tmp", 0o1777}, {"run", 0o755}, {"var", 0o755}, {"var/tmp", 0o1777}, {"root", 0o700}, {"mnt", 0o755},
	}
	for _, d := range dirs {
		p := filepath.Join(dir, d.path)
		if err := os.Mkdir(p, d.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, d.mode); err != nil { // umask
			return err
		}
	}
	files := map[string]string{
		"etc/hosts":      "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
		"etc/hostname":   "virtbench\n",
		"etc/os-release": "NAME=virtbench\nID=virtbench\nPRETTY_NAME=\"virtbench minimal rootfs\"\n",
	}
	maps.Copy(files, accounts)
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	if err := copyFile(agent, filepath.Join(dir, AgentPath), 0o755); err != nil {
		return err
	}
	if owner == 0 {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, owner, owner)
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func fileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Usage is the disk footprint of a file tree.
type Usage struct {
	// Apparent is the sum of file sizes; Allocated the sum of allocated
	// blocks (st_blocks × 512). Hard links are counted once.
	Apparent, Allocated int64
	Files               int
}

// DiskUsage measures the tree at root. A missing root is an empty tree.
func DiskUsage(root string) (Usage, error) {
	var u Usage
	seen := map[[2]uint64]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed while walking
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		key := [2]uint64{st.Dev, st.Ino}
		if seen[key] {
			return nil
		}
		seen[key] = true
		u.Files++
		if d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0 {
			u.Apparent += st.Size
		}
		u.Allocated += st.Blocks * 512
		return nil
	})
	if err != nil {
		return Usage{}, fmt.Errorf("images: disk usage of %s: %w", root, err)
	}
	return u, nil
}

// DiskUsageAll sums the footprints of several trees or files.
func DiskUsageAll(roots ...string) (Usage, error) {
	var total Usage
	for _, r := range roots {
		u, err := DiskUsage(r)
		if err != nil {
			return Usage{}, err
		}
		total.Apparent += u.Apparent
		total.Allocated += u.Allocated
		total.Files += u.Files
	}
	return total, nil
}
