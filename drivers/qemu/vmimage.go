package qemu

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"virtbench/drivers"
)

// The traditional VM: a disk image with its own kernel and init (qemu
// option vm_image), booted through the firmware (SeaBIOS) and configured
// by a cloud-init NoCloud seed that virtbench writes for each VM: its
// NIC's address (network-config) and the service it starts (user-data).
// No agent runs in it: the host sees QEMU's monitor, the guest's console,
// and the service's port.
var imageBoot = []bootStep{stepAccel, stepInstanceDir, stepImageDisk, stepNetwork, stepSeed, stepVMM}

// VM disk image formats vm_image accepts.
const (
	formatQcow2 = "qcow2"
	formatRaw   = "raw"
)

// vmImageFormat returns the format of the disk image at path: qcow2 (its
// magic), or raw when it holds a partition table (an MBR's boot
// signature, which a GPT's protective MBR has too); anything else is an
// error that says so.
func vmImageFormat(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("vm_image: %w", err)
	}
	defer f.Close()
	b := make([]byte, 512)
	if _, err := io.ReadFull(f, b); err != nil {
		return "", fmt.Errorf("vm_image %s is not a qcow2 or raw disk image (%d bytes is too short for one)", path, len(b))
	}
	switch {
	case string(b[:4]) == "QFI\xfb":
		return formatQcow2, nil
	case b[510] == 0x55 && b[511] == 0xaa:
		return formatRaw, nil
	}
	return "", fmt.Errorf("vm_image %s is not a qcow2 or raw disk image (no qcow2 header, no partition table)", path)
}

// stepImageDisk gives the VM a copy-on-write overlay of the disk image.
var stepImageDisk = bootStep{"image disk", func(d *Driver, b *booting) error {
	if b.spec.Image == nil || b.spec.Process == nil {
		return errors.New("qemu: vm_image runs a service (a workload with service:), which the image's own init starts")
	}
	if err := d.makeDisk(b.inst); err != nil {
		return err
	}
	b.plan.disk = b.inst.disk
	return nil
}}

// stepSeed writes the VM's NoCloud seed: a FAT file system labelled
// CIDATA holding meta-data (the instance), network-config (its NIC, by
// MAC, at the tap's address) and user-data (the service started as soon
// as cloud-init's network stage runs, a transient systemd unit with its
// environment, directory and user, its output on the console).
var stepSeed = bootStep{"seed", func(d *Driver, b *booting) error {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac[3:]); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	copy(mac, []byte{0x52, 0x54, 0x00}) // QEMU's prefix
	b.plan.mac = mac.String()
	files, err := noCloudSeed(drivers.SafeName(b.spec.ID), b.plan.mac, b.plan.ip, *b.spec.Process)
	if err != nil {
		return err
	}
	seed := filepath.Join(b.inst.dir, "seed.img")
	if err := writeSeed(seed, files); err != nil {
		return err
	}
	b.plan.seed = seed
	return nil
}}

// noCloudSeed returns the seed's files for the VM named host with a NIC
// of mac at ip (ADDR/PREFIX), starting p. Each is JSON, which YAML reads.
func noCloudSeed(host, mac, ip string, p drivers.Process) (map[string][]byte, error) {
	meta, err := json.Marshal(map[string]string{"instance-id": "virtbench-" + host, "local-hostname": host})
	if err != nil {
		return nil, err
	}
	network, err := json.Marshal(map[string]any{"version": 2, "ethernets": map[string]any{
		"nic0": map[string]any{"match": map[string]string{"macaddress": mac}, "addresses": []string{ip}},
	}})
	if err != nil {
		return nil, err
	}
	// Started at once (--no-block, no default dependencies: cloud-init's
	// own unit runs before basic.target, which a default transient unit
	// would wait for), its output on the console, where the host reads it.
	run := []string{"systemd-run", "--unit=virtbench-service", "--no-block", "--property=DefaultDependencies=no",
		"--property=StandardOutput=journal+console", "--property=StandardError=journal+console"}
	if p.Dir != "" {
		run = append(run, "--working-directory="+p.Dir)
	}
	if p.User != "" {
		u, g, hasGroup := strings.Cut(p.User, ":")
		run = append(run, "--uid="+u)
		if hasGroup {
			run = append(run, "--gid="+g)
		}
	}
	for _, kv := range p.Env {
		run = append(run, "--setenv="+kv)
	}
	run = append(append(run, "--"), p.Command...)
	user, err := json.Marshal(map[string]any{"bootcmd": [][]string{run}})
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		"meta-data":      meta,
		"network-config": network,
		"user-data":      append([]byte("#cloud-config\n"), user...),
	}, nil
}

// seedBytes is the size of a seed's file system: FAT's smallest and more.
const seedBytes = 2 << 20

// writeSeed makes the FAT file system labelled CIDATA at path holding
// files (mkfs.vfat, then mtools' mcopy: nothing is mounted).
func writeSeed(path string, files map[string][]byte) error {
	if out, err := exec.Command("mkfs.vfat", "-n", "CIDATA", "-C", path, fmt.Sprint(seedBytes/1024)).CombinedOutput(); err != nil {
		return fmt.Errorf("qemu: seed: mkfs.vfat: %v: %s (apt-get install dosfstools)", err, strings.TrimSpace(string(out)))
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), "seed-")
	if err != nil {
		return fmt.Errorf("qemu: seed: %w", err)
	}
	defer os.RemoveAll(dir)
	args := []string{"-i", path}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return fmt.Errorf("qemu: seed: %w", err)
		}
		args = append(args, p)
	}
	if out, err := exec.Command("mcopy", append(args, "::")...).CombinedOutput(); err != nil {
		return fmt.Errorf("qemu: seed: mcopy: %v: %s (apt-get install mtools)", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// vmmReady is Ready for a VM disk image, which has no agent: the VM is
// ready for its service's probe once QEMU answers on its monitor.
func (i *instance) vmmReady(ctx context.Context) (drivers.Readiness, error) {
	select {
	case <-i.vmReady:
	case <-i.p.Exited():
		return drivers.Readiness{}, fmt.Errorf("qemu: %w; its last output: %s", i.p.ExitErr(), i.p.Tail())
	case <-ctx.Done():
		return drivers.Readiness{}, fmt.Errorf("%w: QMP did not answer: %w", drivers.ErrNotReady, context.Cause(ctx))
	}
	if i.vmmErr != nil {
		return drivers.Readiness{}, i.vmmErr
	}
	return drivers.Readiness{Begin: i.begin, Phases: []drivers.Phase{{Name: "vmm", At: i.vmmUp}}, At: i.vmmUp, Labels: i.labels}, nil
}

// UsesServiceImage reports whether the driver's VMs use a service's image
// root: not with vm_image, whose disk is the image.
func (d *Driver) UsesServiceImage() bool { return d.cfg.VMImage == "" }
