package vminit

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"virtbench/internal/required"

	"golang.org/x/sys/unix"
)

func TestWorkloadLine(t *testing.T) {
	w := Workload{Args: []string{"fileio", "-size", "1048576"}, Nonce: "0123456789abcdef", IP: "10.200.0.2/30", Seed: []byte{1, 2, 3}, Disk: true}
	line, err := FormatWorkload(w)
	if err != nil {
		t.Fatal(err)
	}
	// What follows the line on the console (STOP) is kept for the
	// console's watcher, whether it came in the same read or later.
	r := io.MultiReader(bytes.NewReader(append(line, "ST"...)), strings.NewReader("OP\n"))
	got, after, err := readLine(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseWorkload(got)
	if err != nil || !reflect.DeepEqual(back, w) {
		t.Errorf("ParseWorkload(%q) = %+v, %v; want %+v", got, back, err, w)
	}
	rest, _ := io.ReadAll(io.MultiReader(bytes.NewReader(after), r))
	if string(rest) != StopCommand+"\n" {
		t.Errorf("after the line the console holds %q", rest)
	}
	for _, bad := range []string{"STOP", `WORKLOAD {"args":[]}`, "WORKLOAD {", `WORKLOAD {"args":["idle"],"nonce":"x\nVIRTBENCH"}`} {
		if _, err := ParseWorkload(bad); err == nil {
			t.Errorf("ParseWorkload(%q) accepted it", bad)
		}
	}
}

// TestRawConsole: on a terminal, the Workload line (which carries the
// clone's entropy) is not echoed back to the host, and a line longer than
// the line discipline's 4095 bytes arrives whole.
func TestRawConsole(t *testing.T) {
	master, slave := openPTY(t)
	if err := rawConsole(slave); err != nil {
		t.Fatal(err)
	}
	line := "WORKLOAD " + strings.Repeat("s", 6000) + "\n"
	go master.Write([]byte(line))
	got, _, err := readLine(slave, nil)
	if err != nil || got != strings.TrimSuffix(line, "\n") {
		t.Fatalf("readLine = %d bytes, %v; want %d bytes", len(got), err, len(line)-1)
	}
	fds := []unix.PollFd{{Fd: int32(master.Fd()), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 300); err != nil || n > 0 {
		t.Errorf("the console echoed what the host wrote (poll: %d, %v)", n, err)
	}
}

// openPTY returns a new pseudo-terminal's master and slave, closed when
// the test ends.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		required.Skip(t, "pty", fmt.Sprintf("no pseudo-terminals here (/dev/ptmx: %v); mount devpts to run this test", err))
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// TestExt4Label reads a file system's label from its superblock, as the
// guest tells the instance's disk from the tools disk.
func TestExt4Label(t *testing.T) {
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		required.Skip(t, "qemu", "mkfs.ext4 is not installed (the qemu driver's disks need it): apt-get install e2fsprogs")
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ext4Label(img); got != "" {
		t.Errorf("label of zeroes = %q, want none", got)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "vbtools", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	if got := ext4Label(img); got != "vbtools" {
		t.Errorf("label = %q, want vbtools", got)
	}
	if got := ext4Label(filepath.Join(t.TempDir(), "missing")); got != "" {
		t.Errorf("label of a missing device = %q", got)
	}
}
