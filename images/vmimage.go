package images

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// VMImagePackages are added to debootstrap's minbase for the example VM
// disk image: an init, the kernel, cloud-init (python3-cffi-backend named
// because debootstrap does not resolve the virtual package
// python3-cryptography needs), ifupdown for the network configuration
// cloud-init renders, and nginx.
var VMImagePackages = []string{"systemd-sysv", "udev", "kmod", "e2fsprogs", "linux-image-amd64", "python3-cffi-backend", "cloud-init", "ifupdown", "nginx-light"}

// syslinuxMBR is syslinux's master boot record (Debian's syslinux-common).
const syslinuxMBR = "/usr/lib/syslinux/mbr/mbr.bin"

// vmImageLayout changes whenever BuildVMImage's disk changes.
const vmImageLayout = "vm-image-v1"

// VMRootLabel is the ext4 label of the example VM disk image's root, by
// which its kernel command line names it.
const VMRootLabel = "vbroot"

// BuildVMImage returns the example VM disk image: a raw disk with its own
// bootloader, kernel and init, as the traditional VM is (qemu's
// vm_image), made from the Debian profile with cloud-init and the example
// image's nginx configuration, in cacheDir once (debootstrap: minutes).
// Its MBR and FAT boot partition hold syslinux, the kernel and its
// initramfs; its second partition the root file system, labelled
// VMRootLabel. nginx's own unit is masked: the service cloud-init starts
// from the NoCloud seed is the one measured. Nothing is mounted to make
// it (mkfs -d, mtools, syslinux's mtools installer).
func BuildVMImage(cacheDir string) (string, error) {
	for _, t := range [][2]string{{"mkfs.vfat", "dosfstools"}, {"mcopy", "mtools"}, {"syslinux", "syslinux"}, {"sfdisk", "fdisk"}, {"mkfs.ext4", "e2fsprogs"}} {
		if _, err := exec.LookPath(t[0]); err != nil {
			return "", fmt.Errorf("images: VM image: no %s (apt-get install %s)", t[0], t[1])
		}
	}
	if _, err := os.Stat(syslinuxMBR); err != nil {
		return "", fmt.Errorf("images: VM image: %w (apt-get install syslinux-common)", err)
	}
	dir := filepath.Join(cacheDir, "vm-image", vmImageLayout)
	disk := filepath.Join(dir, "disk.raw")
	if _, err := os.Stat(disk); err == nil {
		return disk, nil
	}
	root, err := debootstrapped(cacheDir, "vm-image", VMImagePackages)
	if err != nil {
		return "", err
	}
	unlock, err := lock(filepath.Join(cacheDir, "vm-image.lock"))
	if err != nil {
		return "", fmt.Errorf("images: VM image: %w", err)
	}
	defer unlock()
	if _, err := os.Stat(disk); err == nil {
		return disk, nil
	}
	if err := configureVMRoot(root); err != nil {
		return "", fmt.Errorf("images: VM image: %w", err)
	}
	err = buildDir(dir, disk, func(tmp string) error {
		return writeVMDisk(filepath.Join(tmp, "disk.raw"), tmp, root)
	})
	if err != nil {
		return "", fmt.Errorf("images: VM image: %w", err)
	}
	return disk, nil
}

// configureVMRoot writes the example VM's configuration into its root:
// the root's fstab entry, cloud-init's datasource (NoCloud alone, so that
// it probes for nothing else), the example image's nginx configuration,
// and nginx's own unit masked.
func configureVMRoot(root string) error {
	files := map[string]string{
		"etc/fstab":                              "LABEL=" + VMRootLabel + " / ext4 defaults 0 1\n",
		"etc/hostname":                           "virtbench-vm\n",
		"etc/cloud/cloud.cfg.d/90-virtbench.cfg": "datasource_list: [NoCloud]\n",
		"etc/nginx/nginx.conf":                   fmt.Sprintf(exampleConf, ExamplePort),
		"srv/www/index.html":                     "<h1>virtbench example service</h1>\n",
	}
	if err := writeFiles(root, files); err != nil {
		return err
	}
	mask := filepath.Join(root, "etc/systemd/system/nginx.service")
	os.Remove(mask)
	return os.Symlink("/dev/null", mask)
}

// The example VM disk's layout, in 512-byte sectors: the boot partition
// from 1 MiB, then the root.
const (
	sector        = 512
	bootStart     = 2048
	bootBytes     = 128 << 20
	rootStart     = bootStart + bootBytes/sector
	vmDiskPadding = 512 << 20 // free room in the root
)

// writeVMDisk writes the disk at path, its partitions made in work.
func writeVMDisk(path, work, root string) error {
	kernels, _ := filepath.Glob(filepath.Join(root, "boot/vmlinuz-*"))
	initrds, _ := filepath.Glob(filepath.Join(root, "boot/initrd.img-*"))
	if len(kernels) != 1 || len(initrds) != 1 {
		return fmt.Errorf("want one kernel and one initramfs in %s/boot, have %v and %v", root, kernels, initrds)
	}
	boot := filepath.Join(work, "boot.img")
	cfg := filepath.Join(work, "syslinux.cfg")
	conf := "DEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL /vmlinuz\n  APPEND initrd=/initrd.img root=LABEL=" + VMRootLabel + " rw console=ttyS0 quiet\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return err
	}
	steps := [][]string{
		{"mkfs.vfat", "-n", "VBBOOT", "-C", boot, fmt.Sprint(bootBytes / 1024)},
		{"mcopy", "-i", boot, kernels[0], "::vmlinuz"},
		{"mcopy", "-i", boot, initrds[0], "::initrd.img"},
		{"mcopy", "-i", boot, cfg, "::syslinux.cfg"},
		{"syslinux", "--install", boot},
	}
	u, err := DiskUsage(root)
	if err != nil {
		return err
	}
	rootBytes := (u.Allocated*5/4 + vmDiskPadding) &^ (1<<20 - 1)
	rootImg := filepath.Join(work, "root.img")
	if err := makeExt4(rootImg, rootBytes, VMRootLabel, root); err != nil {
		return err
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", s[0], err, strings.TrimSpace(string(out)))
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(int64(rootStart)*sector + rootBytes); err != nil {
		return err
	}
	table := fmt.Sprintf("label: dos\nstart=%d, size=%d, type=c, bootable\nstart=%d, size=%d, type=83\n", bootStart, bootBytes/sector, rootStart, rootBytes/sector)
	sf := exec.Command("sfdisk", "--no-reread", "--no-tell-kernel", "-q", path)
	sf.Stdin = strings.NewReader(table)
	if out, err := sf.CombinedOutput(); err != nil {
		return fmt.Errorf("sfdisk: %v: %s", err, strings.TrimSpace(string(out)))
	}
	mbr, err := os.ReadFile(syslinuxMBR)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(mbr[:min(len(mbr), 440)], 0); err != nil { // the partition table follows
		return err
	}
	for _, part := range []struct {
		file  string
		start int64
	}{{boot, bootStart}, {rootImg, rootStart}} {
		if err := copySparseAt(f, part.file, part.start*sector); err != nil {
			return err
		}
		os.Remove(part.file)
	}
	return f.Sync()
}

// copySparseAt copies the file src into dst at off, leaving its blocks of
// zeros unwritten (the disk stays sparse).
func copySparseAt(dst *os.File, src string, off int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	buf, zero := make([]byte, 1<<20), make([]byte, 1<<20)
	for pos := int64(0); ; {
		n, err := io.ReadFull(in, buf)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, werr := dst.WriteAt(buf[:n], off+pos); werr != nil {
				return werr
			}
		}
		pos += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// CopySparse copies the file src to dst, a new file, leaving its blocks of
// zeros unwritten.
func CopySparse(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = f.Truncate(fi.Size())
	if err == nil {
		err = copySparseAt(f, src, 0)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}
