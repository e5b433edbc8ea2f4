package qemu

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/shirou/gopsutil/v4/common"
)

// TestGuestRAMResident reads smaps saved from QEMU 7.2 running a microvm
// under TCG with -m 256 (35 of its 312 mappings kept), as the smaps of a
// process 4242 in a copy of /proc. Expected values were summed from the
// file with awk: the 256 MiB anonymous mapping holds 71680 kB resident,
// all mappings 163976 kB.
func TestGuestRAMResident(t *testing.T) {
	proc := t.TempDir()
	b, err := os.ReadFile("testdata/qemu-tcg-256m.smaps")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(proc, "4242"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proc, "4242", "smaps"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), common.EnvKey, common.EnvMap{common.HostProcEnvKey: proc})
	ram, total, err := guestRAMResident(ctx, 4242, 256<<20, "")
	if err != nil || ram != 71680<<10 || total != 163976<<10 {
		t.Errorf("guestRAMResident = %d, %d, %v; want %d, %d", ram, total, err, 71680<<10, 163976<<10)
	}
	if _, total, err := guestRAMResident(ctx, 4242, 512<<20, ""); err == nil || total != 163976<<10 {
		t.Errorf("guestRAMResident with no mapping of that size = total %d, %v; want the total and an error", total, err)
	}
}
