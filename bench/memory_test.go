package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestParseRollup parses smaps_rollup files saved on Linux 6.x (a QEMU
// under TCG with 256 MiB of guest RAM, and cat), one with shmem pages and
// one in the format of kernels before 5.9, which have no Pss_Anon.
func TestParseRollup(t *testing.T) {
	const kib = 1 << 10
	tests := []struct {
		name string
		in   func(t *testing.T) []byte
		want Memory
	}{
		{"qemu", file("testdata/qemu.smaps_rollup"), Memory{RSS: 178496 * kib, PSS: 176464 * kib, USS: (81360 + 94652) * kib, PSSAnon: 94652 * kib}},
		{"cat", file("testdata/cat.smaps_rollup"), Memory{RSS: 1736 * kib, PSS: 415 * kib, USS: (48 + 112) * kib, PSSAnon: 112 * kib}},
		// gVisor's memory file is a memfd: shmem, the sandbox's own.
		{"memfd", text("00400000-7ffd3a3f9000 ---p 00000000 00:00 0 [rollup]\nRss: 4096 kB\nPss: 4000 kB\nPss_Anon: 1000 kB\nPss_File: 500 kB\nPss_Shmem: 2500 kB\nPrivate_Clean: 0 kB\nPrivate_Dirty: 3500 kB\n"), Memory{RSS: 4096 * kib, PSS: 4000 * kib, USS: 3500 * kib, PSSAnon: 1000 * kib, PSSShmem: 2500 * kib}},
		{"before 5.9", text("00400000-7ffd3a3f9000 ---p 00000000 00:00 0 [rollup]\nRss: 2048 kB\nPss: 1024 kB\nShared_Clean: 1024 kB\nPrivate_Clean: 512 kB\nPrivate_Dirty: 512 kB\n"), Memory{RSS: 2048 * kib, PSS: 1024 * kib, USS: 1024 * kib}},
	}
	for _, tt := range tests {
		got, err := parseRollup(tt.in(t))
		if err != nil || got != tt.want {
			t.Errorf("%s: parseRollup = %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "Rss: 12 kB\n", "Rss: 12 kB\nPss: x kB\n", "Rss: 12 MB\nPss: 1 kB\n"} {
		if m, err := parseRollup([]byte(bad)); err == nil {
			t.Errorf("parseRollup(%q) = %+v, want an error", bad, m)
		}
	}
}

func file(name string) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func text(s string) func(*testing.T) []byte {
	return func(*testing.T) []byte { return []byte(s) }
}

// allocChildEnv makes the test binary a child that allocates and touches
// the given number of bytes, says "ready" and waits for stdin to close.
const allocChildEnv = "VIRTBENCH_TEST_ALLOC"

func allocChild(size string) {
	n, err := strconv.Atoi(size)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i%251 + 1) // every page written, none left zero
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	// Keep b alive until here.
	if b[n-1] == 0 {
		os.Exit(3)
	}
}

// startAlloc starts a child that holds size bytes of its own memory and
// returns its PID once they are touched.
func startAlloc(t *testing.T, size int) int32 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), allocChildEnv+"="+strconv.Itoa(size))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if line != "ready\n" {
			t.Fatalf("allocating child said %q", line)
		}
	case <-time.After(time.Minute):
		t.Fatal("allocating child not ready within a minute")
	}
	return int32(cmd.Process.Pid)
}

// TestMemoryOfKnownAllocation samples children that each allocate and
// touch a known amount: PSS (and its anonymous part) is at least the
// allocation and grows by at least what a child allocates more, USS <= PSS
// <= RSS, and the sum over several processes is the sum of each.
func TestMemoryOfKnownAllocation(t *testing.T) {
	const a, b = 24 << 20, 40 << 20
	pa, pb := startAlloc(t, a), startAlloc(t, b)
	ctx := context.Background()
	ma, err := MemoryOf(ctx, []int32{pa})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := MemoryOf(ctx, []int32{pb})
	if err != nil {
		t.Fatal(err)
	}
	both, err := MemoryOf(ctx, []int32{pa, pb})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		m     Memory
		alloc int64
	}{{ma, a}, {mb, b}} {
		if c.m.PSS < c.alloc || c.m.PSSAnon < c.alloc {
			t.Errorf("PSS %d (anonymous %d) below the %d bytes the child touched", c.m.PSS, c.m.PSSAnon, c.alloc)
		}
		if c.m.USS > c.m.PSS || c.m.PSS > c.m.RSS {
			t.Errorf("want USS <= PSS <= RSS, got %+v", c.m)
		}
	}
	// The two children differ only in what they allocated (the race
	// detector, where the test runs under it, adds shadow memory in
	// proportion): the difference shows, give or take the runtime's own
	// pages.
	if d := mb.PSSAnon - ma.PSSAnon; d < b-a-1<<20 {
		t.Errorf("anonymous PSS differs by %d between children whose allocations differ by %d", d, b-a)
	}
	// The children are idle: the sum may move by the odd page.
	if d := both.PSS - (ma.PSS + mb.PSS); d < -1<<20 || d > 1<<20 {
		t.Errorf("PSS of both %d, sum of each %d", both.PSS, ma.PSS+mb.PSS)
	}
	if _, err := MemoryOf(ctx, []int32{1 << 30}); err == nil {
		t.Error("MemoryOf a PID that does not exist succeeded")
	}
}
