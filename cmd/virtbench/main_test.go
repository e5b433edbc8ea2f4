package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"virtbench/internal/required"

	"golang.org/x/sys/unix"

	"virtbench/analysis"
	"virtbench/drivers/docker"
	"virtbench/drivers/drivertest"
	"virtbench/drivers/podman"
	"virtbench/drivers/state"
	"virtbench/internal/results"
)

var virtbench string // path of the binary under test

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "virtbench-cli-")
	if err != nil {
		panic(err)
	}
	virtbench = filepath.Join(dir, "virtbench")
	// The runs of these tests keep their state apart from the host's, so
	// that they neither wait for nor count as the host's own runs.
	os.Setenv(StateEnv, filepath.Join(dir, "state"))
	os.Setenv(state.HostEnv, filepath.Join(dir, "host"))
	if out, err := exec.Command("go", "build", "-o", virtbench, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	// TestKilledRunCleaned's Docker run imports the agent's image, which
	// clean keeps (it is a cache); the image goes with the tests.
	images, imagesErr := docker.Images(context.Background())
	code := m.Run()
	if imagesErr == nil {
		docker.RemoveImages(context.Background(), images)
	}
	os.RemoveAll(dir)
	drivertest.CleanupAgent()
	os.Exit(code)
}

// cli runs virtbench and returns its exit status, stdout and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return cliEnv(t, nil, args...)
}

// cliEnv runs virtbench with env added to the environment and returns its
// exit status, stdout and stderr.
func cliEnv(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cache := t.TempDir()
	// A command that checks the podman driver (list, run) makes a Podman
	// store for the cache, whose per-boot state is outside it.
	t.Cleanup(func() {
		if err := podman.RemoveStore(cache); err != nil {
			t.Error(err)
		}
	})
	cmd := exec.Command(virtbench, args...)
	cmd.Env = append(append(os.Environ(), "VIRTBENCH_CACHE="+cache), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "usage: virtbench COMMAND"},
		{[]string{"--help"}, exitOK, "commands:"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"run", "--reps"}, exitUsage, "flag needs an argument"},
		{[]string{"run", "nosuch"}, exitUsage, `no built-in scenario "nosuch"`},
		{[]string{"run", "startup", "--drivers", "nativ"}, exitUsage, `"nativ" is neither a variant of scenario startup nor a driver (did you mean "native"?)`},
		{[]string{"run", "startup", "--reps", "-3"}, exitUsage, `--reps: "-3" is not a positive count or auto`},
		{[]string{"run", "-h"}, exitOK, "usage: virtbench run"},
		{[]string{"report"}, exitUsage, "want one RUN_DIR"},
		{[]string{"report", "/nonexistent"}, exitUsage, "no such file"},
	}
	for _, tt := range tests {
		code, _, stderr := cli(t, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("virtbench %q: exit %d, stderr %q; want exit %d and %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
}

func TestScenarioTypoStartsNothing(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "typo.yaml")
	os.WriteFile(file, []byte("name: typo\ndrivers: [native]\nworkloads: [idle]\nrepz: 3\n"), 0o644)
	out := filepath.Join(dir, "out")
	code, _, stderr := cli(t, "run", file, "--out", out, "--agent", drivertest.Agent(t))
	if code != exitUsage || !strings.Contains(stderr, file+":4:") || !strings.Contains(stderr, `did you mean "reps"`) {
		t.Errorf("exit %d, stderr %q; want 2 and %s:4 with a suggestion", code, stderr, file)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a run directory was created for a bad scenario: %v", err)
	}
}

func TestRunReportEnvList(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr := cli(t, "run", "startup", "--drivers", "native", "--reps", "5", "--warmup", "1", "--out", out, "--agent", drivertest.Agent(t))
	if code != exitOK {
		t.Fatalf("run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "Median start to READY: native") || !strings.Contains(stdout, "report: "+filepath.Join(out, "report.html")) {
		t.Errorf("run output lacks the headline or report path:\n%s", stdout)
	}
	var status results.Status
	if err := results.ReadJSON(out, results.StatusFile, &status); err != nil || status.State != results.StateCompleted {
		t.Errorf("run.json: %+v, %v", status, err)
	}
	first, _ := os.ReadFile(filepath.Join(out, "summary.json"))
	os.Remove(filepath.Join(out, "summary.json"))
	code, stdout, stderr = cli(t, "report", out, "--format", "json")
	if code != exitOK {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	second, _ := os.ReadFile(filepath.Join(out, "summary.json"))
	if !bytes.Equal(first, second) {
		t.Error("virtbench report did not reproduce summary.json from samples.jsonl")
	}
	var sums []results.Summary
	if err := json.Unmarshal([]byte(stdout), &sums); err != nil || len(sums) == 0 {
		t.Errorf("report --format json: %v, %q", err, stdout)
	}

	code, stdout, _ = cli(t, "env", "--json")
	var p results.Provenance
	if code != exitOK || json.Unmarshal([]byte(stdout), &p) != nil || p.Cores == 0 || p.Kernel == "" {
		t.Errorf("env --json: exit %d, %q", code, stdout)
	}
	// Every driver's tools, from the drivers' declarations: runsc behind
	// gvisor too.
	for _, tool := range []string{"qemu", "runc", "crun", "runsc", "docker"} {
		if p.Tools[tool] == "" {
			t.Errorf("env --json: no version of %s in %v", tool, p.Tools)
		}
	}
	// A run records the tools of the drivers it ran, and only those.
	var runEnv results.Provenance
	if err := results.ReadJSON(out, results.EnvFile, &runEnv); err != nil || len(runEnv.Tools) != 0 {
		t.Errorf("env.json of a native run: tools %v, %v; want none (native runs no tool)", runEnv.Tools, err)
	}
	// It records the host's calibration at its start and its end, and the
	// vocabulary its records use.
	if c := runEnv.Calibration; c == nil || c.Start == nil || c.End == nil || c.Start.CPUOpsPerSec <= 0 || c.End.MemBytesPerSec <= 0 || c.End.SyscallSec <= 0 {
		t.Errorf("env.json's calibration %+v, want both probes", c)
	}
	var st results.Status
	if err := results.ReadJSON(out, results.StatusFile, &st); err != nil || st.Vocabulary == nil || st.Vocabulary.Kind(results.MetricStartup).Unit != "sec" {
		t.Errorf("run.json's vocabulary: %v, %v; want the startup's kind declared", st.Vocabulary, err)
	}
	code, stdout, _ = cli(t, "list", "--agent", drivertest.Agent(t))
	if code != exitOK || !strings.Contains(stdout, "native") || !strings.Contains(stdout, "quick") || !strings.Contains(stdout, "fileio") ||
		!strings.Contains(stdout, "qemu.accel") || !strings.Contains(stdout, "gvisor.platform") {
		t.Errorf("list: exit %d, %q", code, stdout)
	}
}

// agentProcesses returns the PIDs of running processes whose executable is agent.
func agentProcesses(agent string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && exe == agent {
			var pid int
			if _, err := fmt.Sscan(e.Name(), &pid); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// privateAgent copies the agent to a path of this test's own, so that
// agent processes of tests running in parallel are not counted as leaks.
func privateAgent(t *testing.T) string {
	b, err := os.ReadFile(drivertest.Agent(t))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "virtbench-guest")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInterruptKeepsSamples(t *testing.T) {
	agent := privateAgent(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "long.yaml")
	os.WriteFile(file, []byte("name: long\ndrivers: [native]\nworkloads: [idle]\ninstances: [2]\nreps: 10000\nsettle: 0s\n"), 0o644)
	out := filepath.Join(dir, "run")
	cmd := exec.Command(virtbench, "run", file, "--out", out, "--agent", agent)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	samples := filepath.Join(out, results.SamplesFile)
	deadline := time.Now().Add(30 * time.Second)
	for lines(samples) < 20 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no samples within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("exit %d (%v), want 130", code, err)
	}
	got, err := results.ReadSamples(samples, results.Linked())
	if err != nil || len(got) < 20 {
		t.Errorf("samples after interrupt: %d, %v; want at least the 20 seen", len(got), err)
	}
	var status results.Status
	if err := results.ReadJSON(out, results.StatusFile, &status); err != nil || status.State != results.StateInterrupted {
		t.Errorf("run.json after interrupt: %+v, %v", status, err)
	}
	if _, err := os.Stat(filepath.Join(out, "report.html")); err != nil {
		t.Errorf("no report after interrupt: %v", err)
	}
	if pids := agentProcesses(agent); len(pids) > 0 {
		t.Errorf("agent processes left after interrupt: %v", pids)
	}
}

func lines(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
	}
	return n
}

func TestCompareFailsOnRegression(t *testing.T) {
	agent := drivertest.Agent(t)
	dir := t.TempDir()
	// A slower agent: the same binary behind a 30 ms pause.
	slow := filepath.Join(dir, "slow-agent")
	script := "#!/bin/sh\nsleep 0.03\nexec " + agent + " \"$@\"\n"
	if err := os.WriteFile(slow, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	runs := map[string]string{"a": agent, "slow": slow}
	for name, ag := range runs {
		code, stdout, stderr := cli(t, "run", "startup", "--drivers", "native", "--reps", "10", "--warmup", "1",
			"--out", filepath.Join(dir, name), "--agent", ag)
		if code != exitOK {
			t.Fatalf("run %s: exit %d\n%s\n%s", name, code, stdout, stderr)
		}
	}
	code, stdout, stderr := cli(t, "compare", filepath.Join(dir, "a"), filepath.Join(dir, "slow"), "--fail-on-regression", "20")
	if code != exitFailures || !strings.Contains(stdout, "regression: native idle startup") {
		t.Errorf("compare with a slowed run: exit %d\n%s\n%s\nwant exit 1 naming the startup regression", code, stdout, stderr)
	}
	// Two runs of the same agent may differ by more than 20% in any metric
	// on a shared machine, so the passing case is one whose verdict cannot
	// depend on noise: a run against itself.
	code, stdout, stderr = cli(t, "compare", filepath.Join(dir, "a"), filepath.Join(dir, "a"), "--fail-on-regression", "20")
	if code != exitOK || strings.Contains(stdout, "regression:") {
		t.Errorf("compare of a run with itself: exit %d\n%s\n%s\nwant exit 0, no regression", code, stdout, stderr)
	}
}

// TestVariantsKeyEverything runs two configurations of one driver side by
// side: every sample, result name and record is keyed by the variant's
// name, a variant runs only its workloads, and the run records each
// variant's driver and resolved settings (defaults, the scenario's, --set).
func TestVariantsKeyEverything(t *testing.T) {
	drivertest.RequiresRoot(t)
	file := writeScenario(t, `name: variants
drivers:
  - native
  - {name: ct-small, driver: container, options: {pids: "64"}, workloads: [idle]}
  - {name: ct, driver: container}
workloads:
  - idle
  - {name: cpu, args: [-ops, "10"]}
reps: 2
warmup: 0
settle: 0s
`)
	out := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr := cli(t, "run", file, "--set", "ct.pids=32", "--set", "container.userns=false", "--out", out, "--agent", drivertest.Agent(t))
	if code != exitOK {
		t.Fatalf("run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	samples, err := results.ReadSamples(filepath.Join(out, results.SamplesFile), results.Linked())
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, s := range samples {
		if s.Metric == results.MetricStartup && !s.Failed() {
			count[s.Variant+" "+s.Workload]++
		}
	}
	want := map[string]int{"native idle": 2, "native cpu": 2, "ct-small idle": 2, "ct idle": 2, "ct cpu": 2}
	if !maps.Equal(count, want) {
		t.Errorf("startup samples per variant and workload = %v, want %v", count, want)
	}
	var status results.Status
	if err := results.ReadJSON(out, results.StatusFile, &status); err != nil {
		t.Fatal(err)
	}
	o := status.Outcome
	for name, wantOpts := range map[string]map[string]string{
		"ct-small": {"pids": "64", "userns": "false", "image": "minimal", "network": "none"},
		"ct":       {"pids": "32", "userns": "false", "image": "minimal", "network": "none"},
	} {
		v := o.Variants[name]
		if v.Driver != "container" || !maps.Equal(v.Options, wantOpts) {
			t.Errorf("run.json variant %s = %+v, want driver container with %v", name, v, wantOpts)
		}
		if v.Host["ksm"] != "off" {
			t.Errorf("run.json variant %s host settings %v, want ksm off", name, v.Host)
		}
		if v.Role.Class != results.ClassOSLevel || v.Role.Baseline {
			t.Errorf("role of %s = %+v, want an OS-level variant, not the baseline", name, v.Role)
		}
	}
	results, _ := os.ReadFile(filepath.Join(out, "results.txt"))
	for _, w := range []string{"/variant=ct-small/workload=idle/", "/variant=ct/workload=cpu/"} {
		if !bytes.Contains(results, []byte(w)) {
			t.Errorf("results.txt lacks %s", w)
		}
	}
	if bytes.Contains(results, []byte("variant=ct-small/workload=cpu")) {
		t.Error("ct-small ran cpu, which it does not list")
	}
}

// TestProgressOnTerminal: on a terminal, even through the writer main
// wraps stderr in, a trial's progress line replaces the previous one;
// piped, every line is kept (the bug: the wrapper hid the terminal).
func TestProgressOnTerminal(t *testing.T) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		required.Skip(t, "pty", fmt.Sprintf("no pseudo-terminals here (/dev/ptmx: %v); mount devpts to run this test", err))
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	if p := newProgress(&pipeWriter{w: tty, name: "stderr"}).(*progress); !p.tty {
		t.Error("progress through pipeWriter on a terminal: not seen as a terminal")
	}
	var b bytes.Buffer
	if p := newProgress(&pipeWriter{w: &b, name: "stderr"}).(*progress); p.tty {
		t.Error("progress into a buffer seen as a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if p := newProgress(&pipeWriter{w: w, name: "stderr"}).(*progress); p.tty {
		t.Error("progress into a pipe seen as a terminal")
	}
}

// TestRunUnderLoad runs the native http server under a load profile, in
// trials and in an objective sweep: the run completes and renders, the
// terminal says how the windows went and what capacity met the
// objective, and capacity.json carries it. The rate is far below what one
// generator sends even on a loaded host, whose run would refuse a rate
// above its measured ceiling.
func TestRunUnderLoad(t *testing.T) {
	file := writeScenario(t, `name: loaded
drivers: [native]
workloads:
  - name: http
    load: {rate: 100/s, duration: 10s, warmup: 200ms, slo: {p99: 1s, errors: 1%}}
instances: 1
reps: 1
warmup: 0
settle: 0s
`)
	out := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr := cli(t, "run", file, "--out", out, "--agent", drivertest.Agent(t))
	if code != exitOK || !strings.Contains(stdout, "Under load:        http ×1: p99") || !strings.Contains(stderr, "the load generator sends up to") {
		t.Fatalf("run under load: exit %d\n%s\n%s", code, stdout, stderr)
	}
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sweep := writeScenario(t, strings.Replace(strings.Replace(string(src), "instances: 1\nreps: 1\nwarmup: 0\n", "density: {max: 2}\n", 1), "name: loaded", "name: knee", 1))
	out = filepath.Join(t.TempDir(), "sweep")
	if code, stdout, stderr := cli(t, "run", sweep, "--out", out, "--agent", drivertest.Agent(t)); code != exitOK || !strings.Contains(stdout, "capacity at the load objective:") {
		t.Fatalf("objective sweep: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var caps []analysis.Capacity
	if err := results.ReadJSON(out, "capacity.json", &caps); err != nil {
		t.Fatal(err)
	}
	if len(caps) == 0 || caps[0].Objective == nil || caps[0].Objective.Steps == 0 {
		t.Errorf("capacity.json %+v: want the objective sweep's answer", caps)
	}
}
