package wine_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"virtbench/drivers"
	"virtbench/drivers/drivertest"
	"virtbench/drivers/wine"
	"virtbench/guest"
	"virtbench/guest/win32"
	"virtbench/images"
)

func TestMain(m *testing.M) {
	code := m.Run()
	drivertest.CleanupAgent()
	os.Exit(code)
}

// ready is the start timeout: the session's first program also starts the
// wineserver and Wine's services.
const ready = 2 * time.Minute

func TestConformance(t *testing.T) {
	drivertest.Run(t, "wine", drivertest.Options{ReadyTimeout: ready, Leaks: wineLeaks})
}

// wineLeaks returns the processes still running in a prefix under the
// run's state directory (a wineserver, a Windows service).
func wineLeaks(env drivers.Env) []string {
	var left []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(b, []byte{0}) {
			if v, ok := strings.CutPrefix(string(kv), "WINEPREFIX="); ok && strings.HasPrefix(v, env.StateDir) {
				cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				left = append(left, fmt.Sprintf("process %s (%s)", e.Name(), bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
			}
		}
	}
	return left
}

// TestSHA256 checks the Windows agent's SHA-256, by the SHA extensions
// and by its generic code, against Go's on lengths around the padding's
// edges: the cpu workload hashes what its Linux twin hashes.
func TestSHA256(t *testing.T) {
	env := drivertest.NewEnv(t, drivertest.Options{})
	drivertest.Check(t, wine.New(env))
	exe := env.Agent + ".exe"
	if err := images.BuildWinAgent(exe, win32.Source); err != nil {
		t.Fatal(err)
	}
	lengths := []int{0, 3, 55, 56, 63, 64, 65, 200, 4096}
	var list []string
	for _, n := range lengths {
		list = append(list, fmt.Sprint(n))
	}
	cmd := exec.Command(wine.Wine, exe, "cpu", "-check", strings.Join(list, ","))
	prefix := filepath.Join(t.TempDir(), "prefix")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "WINEPREFIX=" + prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml="}
	out, err := cmd.Output()
	stop := exec.Command(wine.WineServer, "-k")
	stop.Env = cmd.Env
	stop.Run()
	if err != nil {
		t.Fatalf("cpu -check: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(lengths) {
		t.Fatalf("cpu -check printed %q, want %d lines", out, len(lengths))
	}
	for i, n := range lengths {
		sum := sha256.Sum256(bytes.Repeat([]byte("a"), n))
		want := hex.EncodeToString(sum[:])
		if got := strings.Fields(lines[i]); len(got) != 2 || got[0] != want || got[1] != want {
			t.Errorf("SHA-256 of %d bytes: agent %q (extensions, generic), Go %s", n, got, want)
		}
	}
}

// TestFlagsAsGo: the Windows agent takes and refuses the flags the Go
// agent does (the repro: idle -- passed the scenario's check, which the
// Go agent's flags make, and the Windows agent refused it).
func TestFlagsAsGo(t *testing.T) {
	env := drivertest.NewEnv(t, drivertest.Options{})
	drivertest.Check(t, wine.New(env))
	exe := env.Agent + ".exe"
	if err := images.BuildWinAgent(exe, win32.Source); err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(t.TempDir(), "prefix")
	wineEnv := []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "WINEPREFIX=" + prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=,winemenubuilder.exe=d"}
	defer func() {
		stop := exec.Command(wine.WineServer, "-k")
		stop.Env = wineEnv
		stop.Run()
	}()
	// The prefix is made first, as the driver makes its own: a program
	// run in a prefix that does not exist yet waits for wineboot, which a
	// loaded host can make fail the run (exit 1, the program never ran).
	boot := exec.Command(wine.Wine, "wineboot", "--init")
	boot.Env = wineEnv
	if out, err := boot.CombinedOutput(); err != nil {
		t.Fatalf("wineboot --init: %v\n%s", err, out)
	}
	settle := exec.Command(wine.WineServer, "-w")
	settle.Env = wineEnv
	settle.Run()
	// crash exits with -code without READY: an exit of 3 is flags taken,
	// 2 flags refused.
	for _, args := range [][]string{
		{"crash", "-code", "3"}, {"crash", "--code=3"}, {"crash", "-code", "3", "--"},
		{"crash", "-code", "3", "--", "x"}, {"crash", "--", "-code", "3"}, {"crash", "-nope", "1"}, {"crash", "x"},
	} {
		_, _, goErr := guest.Prepare(args)
		cmd := exec.Command(wine.Wine, append([]string{exe}, args...)...)
		cmd.Env = wineEnv
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		code := cmd.ProcessState.ExitCode()
		if took := code == 3; took != (goErr == nil) || !took && code != 2 {
			t.Errorf("%q: the Windows agent exits %d, the Go agent's flags say %v", args, code, goErr)
		}
	}
}
