package images

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Kernel is a guest kernel ready for PVH direct boot.
type Kernel struct {
	// Image is the kernel the user has (a Debian vmlinuz, a bzImage).
	Image string
	// Vmlinux is the uncompressed ELF kernel extracted from Image.
	Vmlinux string
	// Version is the kernel release, e.g. 6.1.0-56-amd64, used to find its
	// modules under /lib/modules.
	Version string
}

// FindKernel returns the newest /boot/vmlinuz-* (Debian's
// linux-image-amd64), or path when it is not empty.
func FindKernel(path string) (string, error) {
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("images: kernel: %w", err)
		}
		return path, nil
	}
	found, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(found) == 0 {
		return "", errors.New("images: no /boot/vmlinuz-*: install Debian's linux-image-amd64 (apt-get install linux-image-amd64) or give a kernel path")
	}
	sort.Strings(found)
	return found[len(found)-1], nil
}

// PrepareKernel extracts the uncompressed vmlinux from image (cached under
// cacheDir/kernel/HASH). Debian compresses its kernels with xz, which is
// decompressed with the xz tool (the kernel's xz stream uses the x86 BCJ
// filter); gzip is decompressed in Go.
func PrepareKernel(cacheDir, image string) (Kernel, error) {
	k := Kernel{Image: image, Version: strings.TrimPrefix(filepath.Base(image), "vmlinuz-")}
	data, err := os.ReadFile(image)
	if err != nil {
		return Kernel{}, fmt.Errorf("images: kernel: %w", err)
	}
	if bytes.HasPrefix(data, []byte("\x7fELF")) {
		k.Vmlinux = image
		return k, nil
	}
	sum := sha256.Sum256(data)
	dir := filepath.Join(cacheDir, "kernel", hex.EncodeToString(sum[:8]))
	k.Vmlinux = filepath.Join(dir, "vmlinux")
	if _, err := os.Stat(k.Vmlinux); err == nil {
		return k, nil
	}
	elf, err := extractVmlinux(data)
	if err != nil {
		return Kernel{}, fmt.Errorf("images: extract vmlinux from %s: %w", image, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Kernel{}, fmt.Errorf("images: %w", err)
	}
	if err := writeAtomic(k.Vmlinux, elf, 0o644); err != nil {
		return Kernel{}, err
	}
	return k, nil
}

// extractVmlinux finds the compressed payload in a bzImage and
// decompresses it, as the kernel's scripts/extract-vmlinux does.
func extractVmlinux(data []byte) ([]byte, error) {
	if i := bytes.Index(data, []byte("\xfd7zXZ\x00")); i >= 0 {
		cmd := exec.Command("xz", "-dc", "--single-stream")
		cmd.Stdin = bytes.NewReader(data[i:])
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil && !bytes.HasPrefix(out.Bytes(), []byte("\x7fELF")) {
			return nil, fmt.Errorf("xz: %v: %s (apt-get install xz-utils)", err, strings.TrimSpace(stderr.String()))
		}
		return checkELF(out.Bytes())
	}
	if i := bytes.Index(data, []byte("\x1f\x8b\x08")); i >= 0 {
		zr, err := gzip.NewReader(bytes.NewReader(data[i:]))
		if err != nil {
			return nil, err
		}
		zr.Multistream(false)
		out, err := io.ReadAll(zr)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, err
		}
		return checkELF(out)
	}
	return nil, errors.New("no xz or gzip payload found; give an uncompressed vmlinux instead")
}

func checkELF(b []byte) ([]byte, error) {
	if !bytes.HasPrefix(b, []byte("\x7fELF")) {
		return nil, errors.New("the decompressed payload is not an ELF kernel")
	}
	return b, nil
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-")
	if err != nil {
		return fmt.Errorf("images: %w", err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), mode)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("images: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("images: %w", err)
	}
	return nil
}

// ResolveModules returns the module files (relative to modulesDir) needed
// for the named modules and their dependencies from modulesDir/modules.dep,
// in load order (dependencies first). Names missing from modules.dep are
// taken to be built into the kernel and skipped.
func ResolveModules(modulesDir string, names []string) ([]string, error) {
	f, err := os.Open(filepath.Join(modulesDir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("images: %w (is the kernel's modules package installed?)", err)
	}
	defer f.Close()
	deps := map[string][]string{} // module path → dependency paths
	byName := map[string]string{} // module name → path
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		name := strings.TrimSuffix(filepath.Base(mod), filepath.Ext(mod))
		name = strings.TrimSuffix(name, ".ko")
		byName[strings.ReplaceAll(name, "-", "_")] = mod
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("images: modules.dep: %w", err)
	}
	var order []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(m string) {
		if seen[m] {
			return
		}
		seen[m] = true
		for _, d := range deps[m] {
			visit(d)
		}
		order = append(order, m)
	}
	for _, n := range names {
		if m, ok := byName[strings.ReplaceAll(n, "-", "_")]; ok {
			visit(m)
		}
	}
	return order, nil
}
