package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"virtbench/bench"
	"virtbench/drivers/drivertest"
	"virtbench/internal/ksm"
	"virtbench/internal/required"
	"virtbench/internal/results"
	"virtbench/internal/tools"
	"virtbench/scenarios"
)

// writeScenario writes a scenario file into a test directory.
func writeScenario(t *testing.T, src string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestBadInputs checks inputs that must be refused before anything starts.
func TestBadInputs(t *testing.T) {
	agent := drivertest.Agent(t)
	huge := writeScenario(t, "name: huge\ndrivers: [native]\nworkloads: [idle]\ninstances: [100000]\nreps: 2\nwarmup: 0\n")
	typo := writeScenario(t, "name: typo\ndrivers: [native, qemu]\nworkloads: [idle]\noptions:\n  qemu.acel: tcg\n")
	script := writeScenario(t, "name: script\ndrivers: [qemu]\nworkloads: [idle]\noptions:\n  qemu.binary: /tmp/x.sh\n")
	remove := writeScenario(t, "name: remove\ndrivers: [native]\nworkloads:\n  - {name: probe, args: [-remove, /etc/hostname]}\n")
	fifo := filepath.Join(t.TempDir(), "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run", "startup", "--drivers", "native", "--warmup", "-5"}, "--warmup -5: want 0 or more"},
		{[]string{"run", "startup", "--drivers", "native", "--set", "unknown.driver=1"}, `--set unknown.driver: "unknown" is neither a driver nor a variant of scenario startup`},
		{[]string{"run", "startup", "--drivers", "native", "--set", "qemu.acel=tcg"}, `--set qemu.acel=tcg: unknown option qemu.acel (did you mean qemu.accel?)`},
		{[]string{"run", "startup", "--drivers", "native", "--set", "qemu.accel=fast"}, `--set qemu.accel=fast: option qemu.accel: "fast" is not one of auto, kvm, tcg`},
		{[]string{"run", "classroom", "--drivers", "qemu-emulatd"}, `--drivers: "qemu-emulatd" is neither a variant of scenario classroom nor a driver (did you mean "qemu-emulated"?)`},
		{[]string{"run", typo}, typo + ":5: unknown option qemu.acel (did you mean qemu.accel?)"},
		{[]string{"run", huge}, huge + ":4: instances: 100000 instances of native need about 800000 tasks"},
		{[]string{"run", script}, script + ":5: options: qemu.binary names a host program or file (/tmp/x.sh)"},
		{[]string{"run", remove}, remove + ":4: workloads: probe -remove names a file"},
		{[]string{"run", fifo}, "not a regular file: a FIFO"},
		{[]string{"run", "/dev/zero"}, "/dev/zero: not a regular file: a device"},
		{[]string{"run", "startup", "--drivers", "native", "--memprofile", "/nonexistent/dir/mem.prof"}, "--memprofile: open /nonexistent/dir/mem.prof: no such file or directory"},
		{[]string{"run", "startup", "--drivers", "native", "--cpuprofile", typo}, "--cpuprofile: open " + typo + ": file exists"},
		{[]string{"run", "startup", "--drivers", "qemu", "--reps", "100000"}, "reps: the plan would take about 138h54m0s"},
		{[]string{"compare", "a", "b", "--fail-on-regression", "-10"}, "want a percentage of 0 or more"},
	}
	for _, tt := range tests {
		out := filepath.Join(t.TempDir(), "out")
		code, _, stderr := cli(t, append(tt.args, "--agent", agent, "--out", out)...)
		if tt.args[0] == "compare" {
			code, _, stderr = cli(t, tt.args...)
		}
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("virtbench %q: exit %d, stderr %q; want exit 2 and %q", tt.args, code, stderr, tt.want)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("virtbench %q created %s", tt.args, out)
		}
	}
	// An option of a driver not in the run is said to be unused.
	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr := cli(t, "run", "startup", "--drivers", "native", "--reps", "1", "--warmup", "0", "--set", "qemu.accel=tcg", "--agent", agent, "--out", out)
	if code != exitOK || !strings.Contains(stderr, "--set qemu.accel=tcg is unused: driver qemu is not in this run") {
		t.Errorf("unused --set: exit %d, stderr %q", code, stderr)
	}
}

// TestOutMustBeNewOrEmpty runs into a directory holding a user's file: the
// run refuses and the file is untouched.
func TestOutMustBeNewOrEmpty(t *testing.T) {
	dir := t.TempDir()
	mine := filepath.Join(dir, "report.html")
	os.WriteFile(mine, []byte("mine"), 0o644)
	code, _, stderr := cli(t, "run", "startup", "--drivers", "native", "--agent", drivertest.Agent(t), "--out", dir)
	if b, _ := os.ReadFile(mine); code != exitUsage || !strings.Contains(stderr, "exists and is not empty") || string(b) != "mine" {
		t.Errorf("exit %d, stderr %q, report.html %q; want exit 2, the reason, and the file untouched", code, stderr, b)
	}
}

// TestCompareNothingInCommon compares runs of different drivers.
func TestCompareNothingInCommon(t *testing.T) {
	dir := t.TempDir()
	agent := drivertest.Agent(t)
	for _, w := range []string{"idle", "cpu"} {
		if code, stdout, stderr := cli(t, "run", "startup", "--drivers", "native", "--workloads", w, "--reps", "1", "--warmup", "0", "--agent", agent, "--out", filepath.Join(dir, w)); code != exitOK {
			t.Fatalf("run: exit %d\n%s\n%s", code, stdout, stderr)
		}
	}
	code, _, stderr := cli(t, "compare", filepath.Join(dir, "idle"), filepath.Join(dir, "cpu"), "--fail-on-regression", "10")
	if code != exitUsage || !strings.Contains(stderr, "no metric in common") {
		t.Errorf("compare with nothing in common: exit %d, stderr %q; want exit 2 saying so", code, stderr)
	}
	// A directory of run directories is a fleet: one report over them.
	code, stdout, stderr := cli(t, "report", dir)
	if code != exitOK || !strings.Contains(stdout, "fleet.html") {
		t.Errorf("report of a directory of runs: exit %d, stdout %q, stderr %q; want the fleet's report", code, stdout, stderr)
	}
	code, _, stderr = cli(t, "report", t.TempDir())
	if code != exitUsage || !strings.Contains(stderr, "not a run directory") || !strings.Contains(stderr, "nor a fleet directory") {
		t.Errorf("report of a directory that is not a run: exit %d, stderr %q", code, stderr)
	}
}

// startLong starts a run that goes on until interrupted and waits for its
// first samples.
// startLong starts a run that goes on until interrupted and waits for its
// first samples; its stderr goes to stderr where given.
func startLong(t *testing.T, stderr io.Writer, extra ...string) (*exec.Cmd, string) {
	t.Helper()
	file := writeScenario(t, "name: long\ndrivers: [native]\nworkloads: [idle]\nreps: 100000\nwarmup: 0\nsettle: 0s\n")
	out := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(virtbench, append([]string{"run", file, "--out", out, "--agent", privateAgent(t)}, extra...)...)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, time.Minute, "the first samples", func() bool { return lines(filepath.Join(out, results.SamplesFile)) > 3 })
	return cmd, out
}

// interrupt sends sig to cmd and returns its exit status and run.json.
func interrupt(t *testing.T, cmd *exec.Cmd, out string, sig syscall.Signal) (int, results.Status) {
	t.Helper()
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	var st results.Status
	if err := results.ReadJSON(out, results.StatusFile, &st); err != nil {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), st
}

// TestOneRunAtATime starts a second run while one goes on: it is refused
// with the first's PID and directory; with --concurrent it runs, and both
// runs say they shared the host.
func TestOneRunAtATime(t *testing.T) {
	first, out1 := startLong(t, nil)
	out2 := filepath.Join(t.TempDir(), "second")
	code, _, stderr := cli(t, "run", "startup", "--drivers", "native", "--reps", "1", "--warmup", "0", "--agent", drivertest.Agent(t), "--out", out2)
	if code != exitUsage || !strings.Contains(stderr, "another virtbench run is going on") || !strings.Contains(stderr, out1) {
		t.Errorf("second run: exit %d, stderr %q; want exit 2 naming %s", code, stderr, out1)
	}
	if _, err := os.Stat(out2); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused run created %s", out2)
	}
	code, stdout, stderr := cli(t, "run", "startup", "--drivers", "native", "--reps", "1", "--warmup", "0", "--agent", drivertest.Agent(t), "--out", out2, "--concurrent")
	var st2 results.Status
	results.ReadJSON(out2, results.StatusFile, &st2)
	if code != exitOK || len(st2.SharedWith) != 1 || !strings.Contains(st2.SharedWith[0], out1) || !strings.Contains(stdout, "shared the host with") {
		t.Errorf("--concurrent run: exit %d, shared with %v\n%s\n%s", code, st2.SharedWith, stdout, stderr)
	}
	code, st1 := interrupt(t, first, out1, syscall.SIGINT)
	if code != exitInterrupted || len(st1.SharedWith) != 1 || !strings.Contains(st1.SharedWith[0], out2) {
		t.Errorf("first run: exit %d, shared with %v; want 130 and the concurrent run named", code, st1.SharedWith)
	}
}

// TestHostWideAcrossRoots: runs under two state roots still see each
// other (the one-run lock, shared_with) and share one hold of the host's
// KSM settings: the first run's KSM stays on while the second ends, and
// the settings are as found once both ended (the repro: the second run
// was neither refused nor recorded, turned KSM off during the first's
// trial, and the host was left with run=1).
func TestHostWideAcrossRoots(t *testing.T) {
	drivertest.RequiresRoot(t)
	if err := ksm.Available(ksm.Dir); err != nil {
		required.Skip(t, "ksm", err.Error())
	}
	before, err := ksm.Read(ksm.Dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ksm.Restore(ksm.Dir, before) }) // whatever the test did
	rootA, rootB := []string{StateEnv + "=" + t.TempDir()}, []string{StateEnv + "=" + t.TempDir()}
	long := writeScenario(t, "name: long\ndrivers: [native]\nworkloads: [idle]\nreps: 100000\nwarmup: 0\nsettle: 0s\noptions: {host.ksm: \"on\"}\n")
	out1 := filepath.Join(t.TempDir(), "first")
	first := exec.Command(virtbench, "run", long, "--out", out1, "--agent", privateAgent(t))
	first.Env = append(os.Environ(), rootA...)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Process.Kill(); first.Wait() })
	waitFor(t, time.Minute, "the first run's KSM hold", func() bool {
		k, err := ksm.Read(ksm.Dir)
		return err == nil && k.Run == 1 && lines(filepath.Join(out1, results.SamplesFile)) > 0
	})
	short := writeScenario(t, "name: short\ndrivers: [native]\nworkloads: [idle]\nreps: 1\nwarmup: 0\nsettle: 0s\noptions: {host.ksm: \"on\"}\n")
	out2 := filepath.Join(t.TempDir(), "second")
	code, _, stderr := cliEnv(t, rootB, "run", short, "--out", out2, "--agent", drivertest.Agent(t))
	if code != exitUsage || !strings.Contains(stderr, out1) {
		t.Errorf("second run under another root: exit %d, stderr %q; want refused naming %s", code, stderr, out1)
	}
	code, stdout, stderr := cliEnv(t, rootB, "run", short, "--out", out2, "--agent", drivertest.Agent(t), "--concurrent")
	var st2 results.Status
	results.ReadJSON(out2, results.StatusFile, &st2)
	if code != exitOK || len(st2.SharedWith) != 1 || !strings.Contains(st2.SharedWith[0], out1) {
		t.Errorf("--concurrent run under another root: exit %d, shared with %v\n%s\n%s", code, st2.SharedWith, stdout, stderr)
	}
	if k, err := ksm.Read(ksm.Dir); err != nil || k.Run != 1 {
		t.Errorf("KSM after the second run ended: %+v, %v; want still on for the first", k, err)
	}
	code, st1 := interrupt(t, first, out1, syscall.SIGINT)
	if code != exitInterrupted || len(st1.SharedWith) != 1 || !strings.Contains(st1.SharedWith[0], out2) {
		t.Errorf("first run: exit %d, shared with %v; want 130 and the second run named", code, st1.SharedWith)
	}
	if k, err := ksm.Read(ksm.Dir); err != nil || k != before {
		t.Errorf("KSM after both runs: %+v, %v; want as found, %+v", k, err, before)
	}
}

// TestSignals: SIGHUP and SIGTERM interrupt a run like SIGINT (exit 130,
// state interrupted, samples kept, nothing left); a closed stdout
// (SIGPIPE) does not stop it.
func TestSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM, syscall.SIGQUIT} {
		cmd, out := startLong(t, nil)
		code, st := interrupt(t, cmd, out, sig)
		if code != exitInterrupted || st.State != results.StateInterrupted {
			t.Errorf("%v: exit %d, state %q; want 130 and interrupted", sig, code, st.State)
		}
		if pids := agentProcesses(cmd.Args[5]); len(pids) > 0 {
			t.Errorf("%v: agent processes left: %v", sig, pids)
		}
	}
	// Read one line of the output and close the pipe, as `| head -1` does.
	file := writeScenario(t, "name: piped\ndrivers: [native]\nworkloads: [idle]\nreps: 30\nwarmup: 0\nsettle: 0s\n")
	out := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(virtbench, "run", file, "--out", out, "--agent", drivertest.Agent(t))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(stderr).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	stderr.Close()
	if err := cmd.Wait(); err != nil {
		t.Errorf("run with its stderr closed: %v; want it to finish", err)
	}
	var st results.Status
	if err := results.ReadJSON(out, results.StatusFile, &st); err != nil || st.State != results.StateCompleted || !strings.Contains(st.Output, "stderr was closed early") {
		t.Errorf("run.json %+v, %v; want completed, saying stderr was closed", st, err)
	}
	if n := lines(filepath.Join(out, results.SamplesFile)); n < 30 {
		t.Errorf("%d samples, want every rep's", n)
	}
}

// TestNothingMeasured: a run whose every trial the guard skipped says it
// measured nothing and exits 1, instead of "completed".
func TestNothingMeasured(t *testing.T) {
	// A workload that would write 100 TiB: nothing at load refuses it, the
	// guard before its trial does, on any host.
	file := writeScenario(t, "name: toobig\ndrivers: [native]\nworkloads:\n  - {name: fileio, args: [-size, \"109951162777600\"]}\nreps: 1\nwarmup: 0\n")
	out := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr := cli(t, "run", file, "--out", out, "--agent", drivertest.Agent(t))
	var st results.Status
	if err := results.ReadJSON(out, results.StatusFile, &st); err != nil {
		t.Fatal(err)
	}
	if code != exitFailures || st.State != results.StateFailed || !strings.Contains(st.Reason, "nothing was measured") || !strings.Contains(stdout, "not run: native fileio ×1") {
		t.Errorf("exit %d, run.json %s %q\n%s\n%s; want exit 1, failed, nothing measured", code, st.State, st.Reason, stdout, stderr)
	}
}

// TestThirdSignal: a third signal exits at once, whatever the run is doing;
// the instances die with virtbench, and clean removes the state left.
func TestThirdSignal(t *testing.T) {
	var stderr syncBuffer
	cmd, out := startLong(t, &stderr)
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	gone := func() bool {
		select {
		case <-exited:
			return true
		default:
			return false
		}
	}
	// Each signal once virtbench said it took the one before (signals
	// sent at once may arrive as one), or once it is gone.
	for _, said := range []string{"stopping every instance", "killing every instance", ""} {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			break // already gone
		}
		if said != "" {
			waitFor(t, time.Minute, "virtbench's word that it took the signal", func() bool { return strings.Contains(stderr.String(), said) || gone() })
		}
	}
	start := time.Now()
	<-exited
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("exit %d after three signals, want %d", code, exitInterrupted)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("exited %v after the third signal", el)
	}
	waitFor(t, 10*time.Second, "the agents to die with virtbench", func() bool { return len(agentProcesses(cmd.Args[5])) == 0 })
	if code, stdout, stderr := cli(t, "clean"); code != exitOK {
		t.Errorf("clean: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if n := lines(filepath.Join(out, results.SamplesFile)); n < 3 {
		t.Errorf("%d samples kept, want those taken before the signals", n)
	}
}

// TestDiskFull runs into a 64 KiB tmpfs that fills mid-run: the run stops
// at the first failed sample write, samples.jsonl ends on a whole line,
// and once there is room again, clean marks the run whose end could not be
// recorded.
func TestDiskFull(t *testing.T) {
	drivertest.RequiresRoot(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mount a small tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	out := filepath.Join(dir, "run")
	file := writeScenario(t, "name: full\ndrivers: [native]\nworkloads: [idle]\nreps: 100000\nwarmup: 0\nsettle: 0s\n")
	code, _, stderr := cli(t, "run", file, "--out", out, "--agent", privateAgent(t))
	if code != exitFailures || !strings.Contains(stderr, "write sample") || !strings.Contains(stderr, "no space left") {
		t.Errorf("exit %d, stderr %q; want exit 1 naming the failed sample write", code, stderr)
	}
	samples, err := results.ReadSamples(filepath.Join(out, results.SamplesFile), results.Linked())
	if err != nil || len(samples) == 0 {
		t.Errorf("samples.jsonl after the disk filled: %d samples, %v; want whole lines only", len(samples), err)
	}
	// On a disk still full, clean cannot record the run's end: it says
	// so and keeps the state that lets it find the run again.
	if code, stdout, stderr := cli(t, "clean"); code == exitOK || !strings.Contains(stderr, "run virtbench clean again once there is room") || strings.Contains(stdout, "removed "+os.Getenv(StateEnv)) {
		t.Errorf("clean on a full disk: exit %d\n%s\n%s; want a failure that keeps the state", code, stdout, stderr)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=16m"); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := cli(t, "clean"); code != exitOK {
		t.Fatalf("clean: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var st results.Status
	if err := results.ReadJSON(out, results.StatusFile, &st); err != nil || st.State == results.StateRunning {
		t.Errorf("run.json after clean: %+v, %v; want it no longer running", st, err)
	}
}

// TestBuiltinsFit checks that no built-in scenario is refused at load on a
// host of the size virtbench is developed on (2 CPUs, 24 GiB, pid_max
// 32768); the guard before each trial may still skip one, with the reason.
func TestBuiltinsFit(t *testing.T) {
	l := bench.HostLimits{Tasks: 32768, TasksLimit: "kernel.pid_max", MemoryBytes: 24 << 30}
	for _, name := range scenarios.Builtins() {
		sc, err := scenarios.Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := bench.CheckFit(sc, l); err != nil {
			t.Errorf("built-in %s refused: %v", name, err)
		}
		if err := bench.CheckPlan(sc, 2); err != nil {
			t.Errorf("built-in %s refused: %v", name, err)
		}
	}
}

// TestReportRefusesImpossible: report refuses samples that cannot have
// been measured, the samples of two runs joined, and records that are not
// regular files, naming the line or file, and leaves the run's derived
// files as they were.
func TestReportRefusesImpossible(t *testing.T) {
	dir := t.TempDir()
	agent := drivertest.Agent(t)
	for _, name := range []string{"a", "b"} {
		if code, stdout, stderr := cli(t, "run", "startup", "--drivers", "native", "--workloads", "idle", "--reps", "1", "--warmup", "0", "--agent", agent, "--out", filepath.Join(dir, name)); code != exitOK {
			t.Fatalf("run: exit %d\n%s\n%s", code, stdout, stderr)
		}
	}
	a := filepath.Join(dir, "a")
	samples := filepath.Join(a, results.SamplesFile)
	orig, err := os.ReadFile(samples)
	if err != nil {
		t.Fatal(err)
	}
	report, _ := os.ReadFile(filepath.Join(a, "report.html"))
	other, _ := os.ReadFile(filepath.Join(dir, "b", results.SamplesFile))
	n := lines(samples)
	var startup string // the first startup sample's line
	for _, l := range strings.SplitAfter(string(orig), "\n") {
		if strings.Contains(l, `"metric":"startup"`) {
			startup = l
			break
		}
	}
	negative := strings.Replace(startup, `"unit":"sec","value":`, `"unit":"sec","value":-5,"x":`, 1)
	for _, tt := range []struct{ name, data, want string }{
		{"negative startup", string(orig) + negative, fmt.Sprintf("samples.jsonl:%d: startup: a duration cannot be negative (-5 sec)", n+1)},
		{"two runs", string(orig) + string(other), fmt.Sprintf("samples.jsonl:%d: a sample of run", n+1)},
	} {
		if err := os.WriteFile(samples, []byte(tt.data), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := cli(t, "report", a)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 and %q", tt.name, code, stderr, tt.want)
		}
		if b, _ := os.ReadFile(filepath.Join(a, "report.html")); !bytes.Equal(b, report) {
			t.Errorf("%s: report.html changed", tt.name)
		}
	}
	if err := os.WriteFile(samples, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	env := filepath.Join(a, results.EnvFile)
	if err := os.Remove(env); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", env); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := cli(t, "report", a); code != exitUsage || !strings.Contains(stderr, "env.json: a symbolic link") {
		t.Errorf("env.json linked to /dev/zero: exit %d, stderr %q; want exit 2, a link refused", code, stderr)
	}
}

// excludedTrials returns the reasons of the run's excluded trials.
func excludedTrials(t *testing.T, out string) []string {
	t.Helper()
	samples, err := results.ReadSamples(filepath.Join(out, results.SamplesFile), results.Linked())
	if err != nil {
		t.Fatal(err)
	}
	var why []string
	for _, s := range samples {
		if s.Metric == results.MetricTrialExcluded {
			why = append(why, s.Error)
		}
	}
	return why
}

// TestInstanceKilledDuringTrial kills one of two instances from outside
// while the trial settles: the trial says which exited and how, and its
// samples stay in the file but out of the summaries (the repro divided the
// MemAvailable drop by both instances).
func TestInstanceKilledDuringTrial(t *testing.T) {
	agent := privateAgent(t)
	file := writeScenario(t, "name: killed\ndrivers: [native]\nworkloads: [idle]\ninstances: [2]\nreps: 1\nwarmup: 0\nsettle: 3s\n")
	out := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(virtbench, "run", file, "--out", out, "--agent", agent)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Both READY (their startups recorded): the kill comes during the
	// settle, not during a start.
	waitFor(t, time.Minute, "two instances ready", func() bool {
		b, _ := os.ReadFile(filepath.Join(out, results.SamplesFile))
		return strings.Count(string(b), `"metric":"startup"`) == 2 && len(agentProcesses(agent)) == 2
	})
	if err := syscall.Kill(agentProcesses(agent)[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitFailures {
		t.Errorf("exit %d, want 1 (a failed trial)", code)
	}
	why := excludedTrials(t, out)
	if len(why) != 1 || !strings.Contains(why[0], "exited during the trial") || !strings.Contains(why[0], "signal: killed") {
		t.Errorf("excluded trials %q; want one, saying an instance was killed", why)
	}
	var sums []results.Summary
	if err := results.ReadJSON(out, "summary.json", &sums); err != nil {
		t.Fatal(err)
	}
	for _, s := range sums {
		if s.N > 0 && (s.Metric == results.MetricHostMemDrop || s.Metric == results.MetricStartup) {
			t.Errorf("summary of %s from the excluded trial: %+v", s.Metric, s)
		}
	}
}

// TestHarnessStopped stops virtbench itself (SIGSTOP, then SIGCONT) during
// a run: the trial it was in is excluded, with the stall's length.
func TestHarnessStopped(t *testing.T) {
	cmd, out := startLong(t, nil)
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the stall the watchdog must see
	n := lines(filepath.Join(out, results.SamplesFile))
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the run to go on after the stall", func() bool { return lines(filepath.Join(out, results.SamplesFile)) > n+3 })
	interrupt(t, cmd, out, syscall.SIGINT)
	why := excludedTrials(t, out)
	if len(why) == 0 || !strings.Contains(why[0], "virtbench itself did not run for") {
		t.Errorf("excluded trials %q; want the one virtbench was stopped in", why)
	}
}

// TestMissingTool: a workload whose tool the host lacks is refused at
// load, with the file, the line and the apt-get line, exit 2, before
// anything starts. fio is hidden from a run in a mount namespace of its
// own (/dev/null bound over it), the host's untouched.
func TestMissingTool(t *testing.T) {
	if os.Geteuid() != 0 {
		required.Skip(t, "root", "hiding a tool needs a mount namespace: run the tests as root")
	}
	if _, err := os.Stat(tools.FIO.Path); err != nil {
		required.Skip(t, "tools", tools.FIO.Check().Error())
	}
	file := filepath.Join(t.TempDir(), "fio.yaml")
	if err := os.WriteFile(file, []byte("name: fio-missing\ndrivers: [native]\nworkloads:\n  - fio\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--", "sh", "-c", `mount --bind /dev/null "$0" && exec "$@"`,
		tools.FIO.Path, virtbench, "run", file, "--agent", drivertest.Agent(t), "--out", out)
	cmd.Env = append(os.Environ(), "VIRTBENCH_CACHE="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	want := file + ":4: workloads: fio is unavailable on this host: fio (/usr/bin/fio) is not installed: apt-get install fio"
	if code := cmd.ProcessState.ExitCode(); code != exitUsage || !strings.Contains(stderr.String(), want) {
		t.Errorf("exit %d (%v), stderr %q; want exit 2 and %q", code, err, stderr.String(), want)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused run created %s", out)
	}
}

// copyQuick copies the saved quick run (reports/testdata/quick) to a new
// directory, with each file changed by edit[name] where given.
func copyQuick(t *testing.T, edit map[string]func(string) string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{results.SamplesFile, results.EnvFile, results.StatusFile} {
		b, err := os.ReadFile(filepath.Join("../../analysis/testdata/quick", f))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if e := edit[f]; e != nil {
			s = e(s)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestReportHostile: a run directory written to harm whoever reports it
// (its host's name and CPU with terminal escapes, a variant name with
// one, metric names that collide in Prometheus) cannot reach the
// terminal or pass as valid metrics; a run still being written says so.
func TestReportHostile(t *testing.T) {
	const esc = `\u001b]0;pwned\u0007\u001b[2J`
	dir := copyQuick(t, map[string]func(string) string{
		results.EnvFile: func(s string) string {
			return strings.Replace(strings.Replace(s, `"hostname": "`, `"hostname": "`+esc, 1), `"cpu_model": "`, `"cpu_model": "`+esc, 1)
		},
		results.StatusFile: func(s string) string { return strings.Replace(s, `"state": "completed"`, `"state": "running"`, 1) },
	})
	code, stdout, stderr := cli(t, "report", dir, "--format", "text", "-v")
	if code != exitOK || strings.ContainsAny(stdout+stderr, "\x1b\x07") {
		t.Errorf("report --format text: exit %d, a control character printed:\n%q\n%q", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "the run is unfinished") || !strings.Contains(stderr, "the run is unfinished") {
		t.Errorf("report of a running run does not say it is unfinished:\n%s\n%s", stdout, stderr)
	}
	code, stdout, _ = cli(t, "report", dir, "--format", "prometheus")
	if code != exitOK || strings.ContainsAny(stdout, "\x1b\x07") {
		t.Errorf("report --format prometheus: exit %d, or a control character in a label", code)
	}

	bad := copyQuick(t, map[string]func(string) string{
		results.SamplesFile: func(s string) string { return strings.Replace(s, `"driver":"native"`, `"driver":"nat`+esc+`"`, 1) },
	})
	if code, _, stderr := cli(t, "report", bad); code != exitUsage || !strings.Contains(stderr, "is not a variant's name") || strings.ContainsAny(stderr, "\x1b\x07") {
		t.Errorf("a variant named with an escape: exit %d, stderr %q; want exit 2 naming the line, escaped", code, stderr)
	}

	collide := copyQuick(t, map[string]func(string) string{
		results.SamplesFile: func(s string) string {
			line := `{"time":"2026-12-01T10:35:41Z","driver":"native","workload":"idle","instances":1,"rep":0,"metric":"%s","unit":"sec","value":1,"run":"c988c82235c86563"}` + "\n"
			return s + fmt.Sprintf(line, "zz.a") + fmt.Sprintf(line, "zz_a")
		},
	})
	if code, _, stderr := cli(t, "report", collide, "--format", "prometheus"); code == exitOK || !strings.Contains(stderr, `metrics "zz.a" and "zz_a" would both be written as virtbench_zz_a_seconds`) {
		t.Errorf("colliding metric names: exit %d, stderr %q; want a failure naming both", code, stderr)
	}
}

// TestGoldenRunLinked: virtbench, which links every driver, reports the
// saved quick run exactly as the reports' own tests, which link none,
// render it (reports/testdata's goldens): the run's recorded vocabulary,
// not what a program links, gives its meaning.
func TestGoldenRunLinked(t *testing.T) {
	dir := copyQuick(t, nil)
	code, stdout, stderr := cli(t, "report", dir, "--format", "text")
	if code != exitOK || stderr != "" {
		t.Fatalf("report: exit %d\n%s", code, stderr)
	}
	for name, got := range map[string][]byte{"quick.terminal.txt": []byte(stdout), "quick.claims.json": nil, "quick.capacity.json": nil} {
		if got == nil {
			var err error
			if got, err = os.ReadFile(filepath.Join(dir, strings.TrimPrefix(name, "quick."))); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(filepath.Join("../../reports/testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the reports render linking no driver:\n--- got\n%s\n--- want\n%s", name, got, want)
		}
	}
}

// syncBuffer is a bytes.Buffer a process writes to while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
