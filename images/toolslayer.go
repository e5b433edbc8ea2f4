package images

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"virtbench/internal/tools"
)

// toolsLayout changes whenever the layout written by BuildTools changes.
const toolsLayout = "tools-v1"

// Tools is the tools layer: the host's installed copies of the programs
// of tools.InLayer with every shared library they load, as
// initramfs-tools' copy_exec gathers them, under tools.Dir of Root.
type Tools struct {
	// Root is the layer's directory, an overlay lower layer of its own.
	Root string
	// Prefix is Root's tools.Dir: bin/ and lib/ (the libraries and the
	// dynamic loader, flat).
	Prefix string
	// Programs are the names of the tools it holds.
	Programs []string
}

// BuildTools returns the tools layer for the tools of tools.InLayer that
// the host has installed, building it in cacheDir/tools/HASH if it is not
// there yet. HASH covers every file that goes in (path, size and
// modification time), so an upgraded package yields a new layer. It fails
// when none of the tools is installed, naming the packages.
func BuildTools(cacheDir string) (Tools, error) {
	files := map[string]string{} // name in the layer, relative to the prefix → host path
	var programs, missing []string
	for _, t := range tools.InLayer {
		if t.Check() != nil {
			missing = append(missing, t.Package)
			continue
		}
		libs, err := sharedLibraries(t.Path)
		if err != nil {
			return Tools{}, fmt.Errorf("images: tools: %w", err)
		}
		files[filepath.Join("bin", t.Name)] = t.Path
		for _, l := range libs {
			files[filepath.Join("lib", filepath.Base(l))] = l
		}
		programs = append(programs, t.Name)
	}
	if len(programs) == 0 {
		return Tools{}, fmt.Errorf("images: tools: none of the layer's tools is installed (apt-get install %s)", strings.Join(missing, " "))
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	fmt.Fprintln(h, toolsLayout)
	for _, n := range names {
		fi, err := os.Stat(files[n])
		if err != nil {
			return Tools{}, fmt.Errorf("images: tools: %w", err)
		}
		fmt.Fprintf(h, "%s %s %d %d\n", n, files[n], fi.Size(), fi.ModTime().UnixNano())
	}
	root := filepath.Join(cacheDir, "tools", hex.EncodeToString(h.Sum(nil)[:8]))
	out := Tools{Root: root, Prefix: filepath.Join(root, tools.Dir), Programs: programs}
	err := buildDir(root, out.Prefix, func(tmp string) error {
		if err := os.Chmod(tmp, 0o755); err != nil {
			return err
		}
		prefix := filepath.Join(tmp, tools.Dir)
		for _, d := range []string{"bin", "lib"} {
			if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
				return err
			}
		}
		for _, n := range names {
			if err := copyFile(files[n], filepath.Join(prefix, n), 0o755); err != nil {
				return fmt.Errorf("%s: %w", files[n], err)
			}
		}
		return nil
	})
	if err != nil {
		return Tools{}, fmt.Errorf("images: tools: %w", err)
	}
	return out, nil
}

// sharedLibraries returns the host paths of the shared libraries that the
// dynamic executable bin loads, its dynamic loader among them, as ldd(1)
// lists them: by the name the loader looks for, which copying follows to
// the file. A library ldd cannot find is an error.
func sharedLibraries(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", bin, err)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		var path string
		switch {
		case len(f) >= 3 && f[1] == "=>" && f[2] == "not":
			return nil, fmt.Errorf("ldd %s: %s is not found", bin, f[0])
		case len(f) >= 3 && f[1] == "=>":
			path = f[2]
		case len(f) == 2 && strings.HasPrefix(f[0], "/"):
			path = f[0] // the dynamic loader
		default:
			continue // the vDSO
		}
		libs = append(libs, path)
	}
	return libs, nil
}

// ToolsDiskPath is where BuildToolsDisk keeps a layer's disk.
func ToolsDiskPath(t Tools) string { return t.Root + ".ext4" }

// BuildToolsDisk returns a raw ext4 image labelled tools.DiskLabel that
// holds the layer's prefix at its root: a VM's tools disk, attached
// read-only and shared by every VM. It is made once per layer.
func BuildToolsDisk(t Tools) (string, error) {
	path := ToolsDiskPath(t)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := makeExt4Of(path, tools.DiskLabel, t.Prefix); err != nil {
		return "", err
	}
	return path, nil
}

// LazyTools builds the tools layer on first use and keeps it (or the
// error): a driver holds one for all its instances.
type LazyTools struct {
	once sync.Once
	t    Tools
	err  error
}

// Get returns the layer of cacheDir, building it the first time.
func (l *LazyTools) Get(cacheDir string) (Tools, error) {
	l.once.Do(func() { l.t, l.err = BuildTools(cacheDir) })
	return l.t, l.err
}

// Usage returns the disk footprint of cacheDir's tools layer.
func (l *LazyTools) Usage(cacheDir string) (Usage, error) {
	t, err := l.Get(cacheDir)
	if err != nil {
		return Usage{}, err
	}
	return DiskUsage(t.Root)
}
