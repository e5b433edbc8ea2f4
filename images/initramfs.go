package images

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"

	"virtbench/guest/vminit"
)

// initramfsLayout changes whenever the layout written by BuildInitramfs changes.
const initramfsLayout = "initramfs-v5"

// GuestModules are the modules a VM guest may need when they are not built
// in: virtio transports (MMIO for microvm, PCI for pc/q35), the block
// device, ext4 for the instance's disk and the crc32c it checksums with
// (a soft dependency modules.dep does not list), the emulated IDE disk
// (ata_piix, sd_mod) and the network devices (virtio_net, the emulated
// e1000), and overlay for a service's root (vminit.ServiceRoot). The guest
// loads only those its devices need (vminit.ModulesParam):
// under emulation each module costs tens of milliseconds of boot.
var GuestModules = []string{
	"virtio_mmio", "virtio_pci", "virtio_blk", "crc32c_generic", "ext4",
	"ata_piix", "sd_mod", "virtio_net", "e1000", "overlay",
}

// Initramfs is a built initramfs.
type Initramfs struct {
	Path string
	// Modules are the module files it holds, in load order.
	Modules []string
}

// BuildInitramfs writes (or reuses from cacheDir/initramfs) an uncompressed
// newc cpio archive with the agent as /init, /dev/console, the kernel
// modules GuestModules need from modulesDir (a kernel's /lib/modules/VERSION)
// and, per module of GuestModules, the module files it takes in load order
// (vminit.ModulesDir/NAME, empty for a built-in module).
func BuildInitramfs(cacheDir, agent, modulesDir string) (Initramfs, error) {
	mods, err := ResolveModules(modulesDir, GuestModules)
	if err != nil {
		return Initramfs{}, err
	}
	agentSum, err := fileHash(agent)
	if err != nil {
		return Initramfs{}, fmt.Errorf("images: initramfs: %w", err)
	}
	h := sha256.Sum256([]byte(fmt.Sprintf("%s %s %s %v", initramfsLayout, agentSum, modulesDir, mods)))
	out := Initramfs{Path: filepath.Join(cacheDir, "initramfs", hex.EncodeToString(h[:8])+".cpio"), Modules: mods}
	if _, err := os.Stat(out.Path); err == nil {
		return out, nil
	}
	agentBytes, err := os.ReadFile(agent)
	if err != nil {
		return Initramfs{}, fmt.Errorf("images: initramfs: %w", err)
	}
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.CharDev("dev/null", 0o666, 1, 3),
		cpio.Directory("proc", 0o555),
		cpio.Directory("sys", 0o555),
		cpio.Directory("tmp", 0o1777),
		cpio.Directory("etc", 0o755),
		cpio.Directory("etc/virtbench", 0o755),
		cpio.StaticFile(strings.TrimPrefix(vminit.MarkerFile, "/"), "virtbench VM initramfs\n", 0o644),
		cpio.StaticRecord(agentBytes, cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}),
	}
	for _, name := range slices.Sorted(maps.Keys(accounts)) {
		recs = append(recs, cpio.StaticFile(name, accounts[name], 0o644))
	}
	for _, m := range mods {
		b, err := os.ReadFile(filepath.Join(modulesDir, m))
		if err != nil {
			return Initramfs{}, fmt.Errorf("images: initramfs: %w", err)
		}
		name := path.Join("lib/modules", path.Base(m))
		recs = append(recs, cpio.StaticRecord(b, cpio.Info{Name: name, Mode: cpio.S_IFREG | 0o644}))
	}
	recs = append(recs, cpio.Directory(strings.TrimPrefix(vminit.ModulesDir, "/"), 0o755))
	for _, g := range GuestModules {
		deps, err := ResolveModules(modulesDir, []string{g})
		if err != nil {
			return Initramfs{}, err
		}
		var list []string
		for _, m := range deps {
			list = append(list, "/"+path.Join("lib/modules", path.Base(m))+"\n")
		}
		recs = append(recs, cpio.StaticFile(path.Join(strings.TrimPrefix(vminit.ModulesDir, "/"), g), strings.Join(list, ""), 0o644))
	}
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	if err := cpio.WriteRecordsAndDirs(w, recs); err != nil {
		return Initramfs{}, fmt.Errorf("images: initramfs: %w", err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return Initramfs{}, fmt.Errorf("images: initramfs: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(out.Path), 0o755); err != nil {
		return Initramfs{}, fmt.Errorf("images: %w", err)
	}
	if err := writeAtomic(out.Path, buf.Bytes(), 0o644); err != nil {
		return Initramfs{}, err
	}
	return out, nil
}
