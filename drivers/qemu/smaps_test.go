package qemu

import (
	"os"
	"testing"
)

// TestParseGuestRAM reads smaps saved from QEMU 7.2 running a microvm under
// TCG with -m 256 (35 of its 312 mappings kept). Expected values were
// summed from the file with awk: the 256 MiB anonymous mapping holds
// 71680 kB resident, all mappings 163976 kB.
func TestParseGuestRAM(t *testing.T) {
	read := func(ramBytes int64) (int64, int64, error) {
		f, err := os.Open("testdata/qemu-tcg-256m.smaps")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return parseGuestRAM(f, ramBytes)
	}
	ram, total, err := read(256 << 20)
	if err != nil || ram != 71680<<10 || total != 163976<<10 {
		t.Errorf("parseGuestRAM = %d, %d, %v; want %d, %d", ram, total, err, 71680<<10, 163976<<10)
	}
	if _, total, err := read(512 << 20); err == nil || total != 163976<<10 {
		t.Errorf("parseGuestRAM with no mapping of that size = total %d, %v; want the total and an error", total, err)
	}
}
