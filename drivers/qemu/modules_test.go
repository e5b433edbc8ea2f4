package qemu

import (
	"slices"
	"testing"
)

func TestGuestModules(t *testing.T) {
	tests := []struct {
		machine, devices string
		disk, nic, svc   bool
		want             []string
	}{
		{"microvm", "virtio", false, false, false, nil},
		{"microvm", "virtio", true, false, false, []string{"virtio_mmio", "virtio_blk", "crc32c_generic", "ext4"}},
		{"microvm", "virtio", true, true, false, []string{"virtio_mmio", "virtio_blk", "crc32c_generic", "ext4", "virtio_net"}},
		{"microvm", "virtio", true, true, true, []string{"virtio_mmio", "virtio_blk", "crc32c_generic", "ext4", "virtio_net", "overlay"}},
		{"q35", "virtio", false, true, false, []string{"virtio_pci", "virtio_net"}},
		{"pc", "emulated", true, true, false, []string{"ata_piix", "sd_mod", "crc32c_generic", "ext4", "e1000"}},
	}
	for _, tt := range tests {
		c := Config{Machine: tt.machine, Devices: tt.devices}
		if got := c.guestModules(tt.disk, tt.nic, tt.svc); !slices.Equal(got, tt.want) {
			t.Errorf("%s/%s disk=%v nic=%v service=%v: %v, want %v", tt.machine, tt.devices, tt.disk, tt.nic, tt.svc, got, tt.want)
		}
	}
}

// TestConfigDefaults: with no settings the driver runs with exactly the
// defaults its options declare (no second list of them to drift).
func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Accel: "auto", Machine: "microvm", Devices: "virtio", Image: "minimal", CPUs: 1, TBSizeMiB: 64, Binary: "qemu-system-x86_64", Network: "none", Boot: "cold"}
	if c != want {
		t.Errorf("parseConfig(nil) = %+v, want the declared defaults %+v", c, want)
	}
	if c, err := parseConfig(map[string]string{"machine": "pc", "memory": "512"}); err != nil || c.Machine != "pc" || c.MemoryMiB != 512 || c.Devices != "virtio" {
		t.Errorf("parseConfig(machine=pc, memory=512) = %+v, %v", c, err)
	}
}
