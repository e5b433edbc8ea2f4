package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"virtbench/analysis"
	"virtbench/drivers/drivertest"
	"virtbench/images"
	"virtbench/internal/required"
	"virtbench/reports"
)

// fleetImage is the Docker image of the campaign's test hosts: Debian's
// minbase with Python (images.FleetHostBase), imported once and kept, as
// virtbench keeps its other images.
const fleetImage = "virtbench-fleet-host:" + images.DebianSuite + "-v1"

// testHost is a Docker container that stands in for a host of the fleet,
// with its own memory limit and CPU quota.
type testHost struct {
	name, container string
	memory, cpus    string
	// user, where set, is the user Ansible runs as on the host.
	user string
}

// needCampaign skips (or fails, where required) on a host without what a
// campaign's test needs: root, a Docker engine and Ansible.
func needCampaign(t *testing.T) {
	t.Helper()
	drivertest.RequiresRoot(t)
	if err := exec.Command("docker", "info").Run(); err != nil {
		required.Skip(t, "docker", "no Docker engine answers: install and start docker.io")
	}
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		required.Skip(t, "ansible", "ansible-playbook is not installed: apt-get install ansible (./run.sh installs it)")
	}
}

// run runs a command and fails t with its output when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ensureImage imports the test hosts' image unless the engine has it.
func ensureImage(t *testing.T) {
	t.Helper()
	if exec.Command("docker", "image", "inspect", fleetImage).Run() == nil {
		return
	}
	cache := os.Getenv("VIRTBENCH_CACHE")
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "virtbench-cache")
	}
	root, err := images.FleetHostBase(cache)
	if err != nil {
		t.Fatal(err)
	}
	tar := exec.Command("tar", "-C", root, "-c", ".")
	imp := exec.Command("docker", "import", "--change", "LABEL virtbench=fleet-host", "-", fleetImage)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	var out bytes.Buffer
	imp.Stdout, imp.Stderr = &out, &out
	if err := tar.Start(); err != nil {
		t.Fatal(err)
	}
	if err := imp.Run(); err != nil {
		t.Fatalf("docker import: %v\n%s", err, out.String())
	}
	if err := tar.Wait(); err != nil {
		t.Fatalf("tar of the test hosts' root: %v", err)
	}
}

// startHosts starts hosts as virtbench must run in Docker here, and
// removes them when the test ends, also when it fails. They have no
// network: Ansible reaches them through the engine (docker exec), and so
// they add no interface to the host, which other packages' tests, run
// beside this one, check for what virtbench left.
func startHosts(t *testing.T, hosts []testHost) {
	t.Helper()
	ensureImage(t)
	prefix := fmt.Sprintf("virtbench-fleet-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	for i := range hosts {
		h := &hosts[i]
		h.container = prefix + "-" + h.name
		t.Cleanup(func() { exec.Command("docker", "rm", "-f", h.container).Run() })
		// --privileged is refused here (the sandbox's capability bounding
		// set lacks CAP_SYS_RESOURCE); overlay on the container's own
		// overlay root is refused, hence the tmpfs state and cache.
		run(t, "docker", "run", "-d", "--name", h.container, "--hostname", h.name, "--network", "none",
			"--memory", h.memory, "--cpus", h.cpus, "--label", "virtbench=fleet-host",
			"--cap-add=ALL", "--cap-drop=SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
			"--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
			"--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
			"--tmpfs", "/var/lib/virtbench:exec", "--tmpfs", "/var/cache/virtbench:exec",
			fleetImage, "sleep", "infinity")
	}
}

// binaries builds virtbench beside the test's agent into a directory of
// its own: what the campaign copies to every host.
func binaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	run(t, "cp", drivertest.Agent(t), filepath.Join(dir, "virtbench-guest"))
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "virtbench"), "virtbench/cmd/virtbench")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// inventory writes an Ansible inventory of hosts reached through the
// Docker connection, each with a host type and a price.
func inventory(t *testing.T, bin string, hosts []testHost) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "all:\n  vars:\n    ansible_connection: community.docker.docker\n    ansible_python_interpreter: /usr/bin/python3\n    virtbench_bin: %s\n  hosts:\n", bin)
	for i, h := range hosts {
		user := ""
		if h.user != "" {
			// Its home may not exist (nobody's): Ansible's files go to /tmp.
			user = ", ansible_user: " + h.user + ", ansible_remote_tmp: /tmp/ansible-" + h.user
		}
		fmt.Fprintf(&b, "    %s: {ansible_host: %s, host_type: %s-%sc, price_per_hour: %.2f%s}\n", h.name, h.container, h.memory, h.cpus, 0.01*float64(i+1), user)
	}
	p := filepath.Join(t.TempDir(), "inventory.yml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// scenario writes a short scenario file: an idle instance natively and in
// a container, a few times, each settling a second.
func scenario(t *testing.T, reps int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "campaign.yaml")
	s := fmt.Sprintf("name: campaign\ndescription: a campaign's test\ndrivers: [native, container]\nworkloads: [idle]\ninstances: 1\nreps: %d\nwarmup: 0\nsettle: 1s\n", reps)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// campaign starts the playbook; the campaign directory is the one
// directory it makes under root.
func campaign(ctx context.Context, inv, scen, root string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ansible-playbook", "-i", inv, "ansible/campaign.yml", "-e", "scenario="+scen, "-e", "campaign_root="+root)
	cmd.Env = append(os.Environ(), "ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_NOCOLOR=1")
	return cmd
}

func campaignDir(t *testing.T, root string) string {
	t.Helper()
	ds, _ := filepath.Glob(filepath.Join(root, "campaign-*"))
	if len(ds) != 1 {
		t.Fatalf("campaign directories %v under %s, want one", ds, root)
	}
	return ds[0]
}

// nothingLeft fails t where a host still runs virtbench or its agent (a
// process whose executable's path says virtbench), or keeps virtbench's
// state or the campaign's files.
func nothingLeft(t *testing.T, h testHost) {
	t.Helper()
	out, _ := exec.Command("docker", "exec", h.container, "sh", "-c",
		"for p in /proc/[0-9]*; do readlink $p/exe 2>/dev/null | grep virtbench | sed \"s|^|$p: |\"; done; "+
			"ls /var/lib/virtbench/state 2>/dev/null | grep -v '^lock$'; ls -d /var/lib/virtbench/campaign 2>/dev/null; true").CombinedOutput()
	if left := strings.TrimSpace(string(out)); left != "" {
		t.Errorf("%s: left behind:\n%s", h.name, left)
	}
}

// setUp starts hosts and writes their inventory; the campaign's directory
// goes under root, and ctx bounds it well within the test's own timeout,
// so that the cleanups run.
func setUp(t *testing.T, hosts []testHost) (ctx context.Context, inv, root string) {
	t.Helper()
	needCampaign(t)
	startHosts(t, hosts)
	inv = inventory(t, binaries(t), hosts)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	t.Cleanup(cancel)
	return ctx, inv, t.TempDir()
}

// TestCampaign runs a short campaign on three hosts with different memory
// limits and CPU quotas and checks the merged report: three completed
// hosts whose capacities follow their limits and name the binding
// resource, each host's limits recorded, nothing left on the hosts.
func TestCampaign(t *testing.T) {
	hosts := []testHost{{name: "small", memory: "3g", cpus: "1"}, {name: "medium", memory: "4g", cpus: "2"}, {name: "large", memory: "8g", cpus: "2"}}
	ctx, inv, root := setUp(t, hosts)
	begin := time.Now()
	if out, err := campaign(ctx, inv, scenario(t, 3), root).CombinedOutput(); err != nil {
		t.Fatalf("campaign: %v\n%s", err, out)
	}
	t.Logf("the campaign took %v", time.Since(begin).Round(time.Second))
	f, err := analysis.LoadFleet(campaignDir(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Hosts) != 3 {
		t.Fatalf("%d hosts in the report, want 3", len(f.Hosts))
	}
	for _, h := range f.Hosts {
		if h.Failed != "" || h.Run == nil || h.Run.Provenance.MemoryLimitBytes == 0 {
			t.Errorf("%s: failed %q, run %v: want a completed run under its memory limit", h.Name, h.Failed, h.Run != nil)
		}
	}
	idle := map[string]int{}
	for _, r := range analysis.AnalyzeFleet(f, 0).Rows {
		if r.Variant == "container" {
			idle[r.Host] = r.Capacity.Idle
			if r.Capacity.Binding != analysis.ResMemory {
				t.Errorf("%s: %s binds, want memory (the hosts differ in their memory limits)", r.Host, r.Capacity.Binding)
			}
		}
	}
	if !(0 < idle["small"] && idle["small"] < idle["medium"] && idle["medium"] < idle["large"]) {
		t.Errorf("container capacities %v: want small < medium < large, as their memory limits", idle)
	}
	if _, err := reports.WriteFleet(f, analysis.AnalyzeFleet(f, 0)); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		nothingLeft(t, h)
	}
}

// TestCampaignAtObjective runs an objective sweep on three hosts: the
// native http server at a load with an objective, each host finding how
// many instances meet it. The fleet report gives each host's capacity at
// the objective, its cost per loaded instance-hour, and the cheapest host
// type for a count of loaded instances.
func TestCampaignAtObjective(t *testing.T) {
	hosts := []testHost{{name: "one", memory: "3g", cpus: "1"}, {name: "two", memory: "3g", cpus: "2"}, {name: "three", memory: "4g", cpus: "2"}}
	ctx, inv, root := setUp(t, hosts)
	scen := filepath.Join(t.TempDir(), "objective.yaml")
	// The rate is far below what one generator sends even on a loaded
	// host, whose run would refuse a rate above its measured ceiling.
	src := "name: objective\ndescription: a campaign's objective sweep\ndrivers: [native]\nworkloads:\n  - name: http\n    load: {rate: 100/s, duration: 10s, warmup: 200ms, slo: {p99: 1s, errors: 1%}}\ndensity: {step: geometric, factor: 2, max: 4}\nsettle: 0s\n"
	if err := os.WriteFile(scen, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := campaign(ctx, inv, scen, root).CombinedOutput(); err != nil {
		t.Fatalf("campaign: %v\n%s", err, out)
	}
	f, err := analysis.LoadFleet(campaignDir(t, root))
	if err != nil {
		t.Fatal(err)
	}
	fa := analysis.AnalyzeFleet(f, 100)
	for _, r := range fa.Rows {
		if o := r.Capacity.Objective; o == nil || o.Steps == 0 || o.Offered != 100 {
			t.Errorf("%s: objective %+v, want an objective sweep's answer at 100/s", r.Host, o)
		}
	}
	if len(fa.Totals) != 1 || fa.Totals[0].Loaded == nil {
		t.Fatalf("totals %+v: want the fleet's capacity at the objective", fa.Totals)
	}
	// Where a host met the objective at all, the fleet names the host
	// type that holds 100 loaded instances for the least.
	if l := fa.Totals[0].Loaded; l.Instances > 0 && (l.Cheapest == "" || l.For == nil) {
		t.Errorf("loaded totals %+v: want the cheapest host type, and for 100 instances", l)
	}
	var md strings.Builder
	if err := reports.WriteFleetMarkdown(&md, f, fa); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "## At the load objective") {
		t.Errorf("fleet.md lacks the section at the load objective:\n%s", md.String())
	}
	var text strings.Builder
	if err := reports.WriteFleetText(&text, f, fa); err == nil {
		t.Logf("the fleet report:\n%s", text.String())
	}
	for _, h := range hosts {
		nothingLeft(t, h)
	}
}

// TestCampaignLostHost kills one host in the middle of its run: the
// campaign still finishes, the report names that host as failed with the
// reason, the other two are complete, and nothing is left running on them.
func TestCampaignLostHost(t *testing.T) {
	hosts := []testHost{{name: "one", memory: "3g", cpus: "1"}, {name: "lost", memory: "3g", cpus: "1"}, {name: "three", memory: "3g", cpus: "1"}}
	ctx, inv, root := setUp(t, hosts)
	var out bytes.Buffer
	cmd := campaign(ctx, inv, scenario(t, 12), root)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Once the lost host's run has samples, it goes.
	for end := time.Now().Add(5 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if exec.Command("docker", "exec", hosts[1].container, "test", "-s", "/var/lib/virtbench/campaign/run/samples.jsonl").Run() == nil {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the lost host's run never started\n%s", out.String())
		}
	}
	run(t, "docker", "kill", hosts[1].container)
	// Ansible exits non-zero: a host became unreachable.
	if err := cmd.Wait(); err == nil {
		t.Errorf("the campaign exited 0 with a host lost\n%s", out.String())
	}
	f, err := analysis.LoadFleet(campaignDir(t, root))
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, h := range f.Hosts {
		switch {
		case h.Name == "lost" && !strings.Contains(h.Failed, "unreachable while running"):
			t.Errorf("lost host: failed %q, want unreachable while running the scenario\n%s", h.Failed, out.String())
		case h.Name != "lost" && (h.Failed != "" || h.Run == nil):
			t.Errorf("%s: failed %q: want its run complete", h.Name, h.Failed)
		}
	}
	if len(f.Hosts) != 3 {
		t.Errorf("%d hosts in the report, want 3\n%s", len(f.Hosts), out.String())
	}
	path, err := reports.WriteFleet(f, analysis.AnalyzeFleet(f, 0))
	if err != nil {
		t.Fatal(err)
	}
	// The lost host's reason may begin with what failed first (the wait
	// for its run, as the engine lost the container) before "unreachable".
	if page, _ := os.ReadFile(path); !bytes.Contains(page, []byte("unreachable while running")) {
		t.Errorf("fleet.html does not name the lost host's failure")
	}
	nothingLeft(t, hosts[0])
	nothingLeft(t, hosts[2])
}

// TestCampaignOneAtATime: hosts in the inventory group
// virtbench_one_at_a_time (hosts that share hardware) make the campaign
// run every host one at a time: the hosts' runs do not overlap.
func TestCampaignOneAtATime(t *testing.T) {
	hosts := []testHost{{name: "first", memory: "3g", cpus: "1"}, {name: "second", memory: "3g", cpus: "1"}}
	ctx, inv, root := setUp(t, hosts)
	f, err := os.OpenFile(inv, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintf(f, "  children:\n    virtbench_one_at_a_time:\n      hosts: {%s: {}}\n", hosts[0].name)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if out, err := campaign(ctx, inv, scenario(t, 2), root).CombinedOutput(); err != nil {
		t.Fatalf("campaign: %v\n%s", err, out)
	}
	fl, err := analysis.LoadFleet(campaignDir(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if len(fl.Hosts) != 2 || fl.Hosts[0].Run == nil || fl.Hosts[1].Run == nil {
		t.Fatalf("hosts %+v, want two completed runs", fl.Hosts)
	}
	a, b := fl.Hosts[0].Run.Status, fl.Hosts[1].Run.Status
	if a.Started.After(b.Started) {
		a, b = b, a
	}
	if a.Finished.IsZero() || b.Started.Before(a.Finished) {
		t.Errorf("runs overlap: one ran %v to %v, the other started %v; want one at a time", a.Started, a.Finished, b.Started)
	}
	for _, h := range hosts {
		nothingLeft(t, h)
	}
}

// TestCampaignNotRoot: a host where virtbench would not run as root is
// refused before anything is copied or started, and the report names it
// as failed with the uid and the setting that fixes it.
func TestCampaignNotRoot(t *testing.T) {
	hosts := []testHost{{name: "unprivileged", memory: "3g", cpus: "1", user: "nobody"}}
	ctx, inv, root := setUp(t, hosts)
	out, err := campaign(ctx, inv, scenario(t, 1), root).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unprivileged") {
		t.Errorf("campaign: %v, want a failure naming the host\n%s", err, out)
	}
	f, err := analysis.LoadFleet(campaignDir(t, root))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(f.Hosts) != 1 || !strings.Contains(f.Hosts[0].Failed, "virtbench needs root") || !strings.Contains(f.Hosts[0].Failed, "uid 65534") || f.Hosts[0].Run != nil {
		t.Errorf("hosts %+v, want the one host failed for want of root, with no run\n%s", f.Hosts, out)
	}
	nothingLeft(t, hosts[0])
}

// hostileBin writes a directory holding a stand-in for virtbench that a
// compromised host would run: its "run" leaves a run directory made by
// script (sh, with $out the run directory), its --check and clean
// succeed. The campaign copies it to the host like the real one.
func hostileBin(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	sh := "#!/bin/sh\ncase \"$1\" in\nrun)\n\tout=\n\tprev=\n\tfor a; do [ \"$prev\" = -out ] && out=$a; prev=$a; done\n\t[ -z \"$out\" ] && exit 0\n\tmkdir -p \"$out\"\n\t" + script + "\n\t;;\nesac\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "virtbench"), []byte(sh), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "virtbench-guest"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCampaignHostile: hosts that send back hostile run directories (the
// probes' setuid-root file, world-writable device, FIFO, 0777 directory
// and links to /etc/shadow; a small archive that unpacks to far more than
// the limit) fail with the reason, while a good host beside them
// completes and the report is rendered; nothing of theirs lands on the
// controller but regular files and directories, in host directories only
// the controller's user enters.
func TestCampaignHostile(t *testing.T) {
	hosts := []testHost{{name: "good", memory: "3g", cpus: "1"}, {name: "hostile", memory: "1g", cpus: "1"}, {name: "bomb", memory: "1g", cpus: "1"}}
	ctx, inv, root := setUp(t, hosts)
	hostile := hostileBin(t, `echo '{}' > "$out/run.json"; cp /bin/sh "$out/suid"; chmod 4755 "$out/suid"; mknod -m 0666 "$out/null" c 1 3; mkfifo "$out/fifo"; mkdir -m 0777 "$out/open"; ln -s /etc/shadow "$out/env.json"; ln -s /etc "$out/samples.jsonl"`)
	bomb := hostileBin(t, `head -c 67108864 /dev/zero > "$out/samples.jsonl"`)
	b, err := os.ReadFile(inv)
	if err != nil {
		t.Fatal(err)
	}
	// The hostile hosts run their own virtbench.
	s := strings.Replace(string(b), "    hostile: {", "    hostile: {virtbench_bin: "+hostile+", ", 1)
	s = strings.Replace(s, "    bomb: {", "    bomb: {virtbench_bin: "+bomb+", ", 1)
	if err := os.WriteFile(inv, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := campaign(ctx, inv, scenario(t, 1), root)
	cmd.Args = append(cmd.Args, "-e", "virtbench_max_run_bytes=16777216")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("the campaign exited 0 with two hosts failed\n%s", out)
	}
	dir := campaignDir(t, root)
	f, err := analysis.LoadFleet(dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	failed := map[string]string{}
	for _, h := range f.Hosts {
		failed[h.Name] = h.Failed
	}
	if failed["good"] != "" || !strings.Contains(failed["hostile"], "refused") || !strings.Contains(failed["bomb"], "more than 16777216 bytes") {
		t.Errorf("failures %q: want good completed, hostile refused, bomb refused at the limit\n%s", failed, out)
	}
	if _, err := os.Stat(filepath.Join(dir, reports.FleetReportFile)); err != nil {
		t.Errorf("no fleet report: %v\n%s", err, out)
	}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch m := fi.Mode(); {
		case !m.IsDir() && !m.IsRegular():
			t.Errorf("%s: %v on the controller, want only files and directories", p, m)
		case m&(os.ModeSetuid|os.ModeSetgid) != 0 || m.Perm()&0o002 != 0:
			t.Errorf("%s: mode %v on the controller", p, m)
		case m.IsDir() && filepath.Dir(p) == dir && m.Perm() != 0o700:
			t.Errorf("%s: host directory mode %v, want 0700", p, m.Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	nothingLeft(t, hosts[0])
}

// TestCampaignBadHostName: an inventory host whose name is a path fails
// the campaign at its first step, naming the host, before anything is
// made: nothing is written beside the campaign's root.
func TestCampaignBadHostName(t *testing.T) {
	needCampaign(t)
	parent := t.TempDir()
	root := filepath.Join(parent, "results")
	inv := filepath.Join(t.TempDir(), "inventory.yml")
	bin := binaries(t)
	if err := os.WriteFile(inv, []byte("all:\n  vars:\n    virtbench_bin: "+bin+"\n  hosts:\n    ../escape: {ansible_host: 192.0.2.1}\n    fine: {ansible_host: 192.0.2.2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := campaign(ctx, inv, scenario(t, 1), root).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `inventory host \"../escape\" is not a host's name`) {
		t.Errorf("campaign: %v, want a failure naming the host\n%s", err, out)
	}
	if left, _ := os.ReadDir(parent); len(left) != 0 {
		t.Errorf("the campaign made %v, want nothing", left)
	}
}

// TestCampaignService runs a service campaign: the scenario names its
// image by a path relative to itself, the playbook copies the image
// beside the scenario to the host (trust_scenario=true), and the host
// serves it natively and in a container. A scenario whose image lies
// outside its directory is refused on the controller before any host
// starts.
func TestCampaignService(t *testing.T) {
	hosts := []testHost{{name: "svc", memory: "3g", cpus: "2"}}
	ctx, inv, root := setUp(t, hosts)
	dir := t.TempDir()
	img, err := images.ExampleImage(filepath.Join(dir, "root"), images.ExamplePort)
	if err != nil {
		required.Skip(t, "tools", fmt.Sprintf("%v (apt-get install nginx-light)", err))
	}
	if err := os.Mkdir(filepath.Join(dir, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := images.WriteDockerArchive(filepath.Join(dir, "images", "web.tar"), "example/web:1", img); err != nil {
		t.Fatal(err)
	}
	service := func(image string) string {
		p := filepath.Join(dir, "service.yaml")
		s := fmt.Sprintf("name: service\ndrivers: [native, container]\nworkloads:\n  - name: web\n    service:\n      image: docker-archive:%s\n      port: %d\n      ready: {http: /healthz}\nreps: 1\nwarmup: 0\nsettle: 0s\n", image, images.ExamplePort)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cmd := campaign(ctx, inv, service("images/web.tar"), root)
	cmd.Args = append(cmd.Args, "-e", "trust_scenario=true")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("campaign: %v\n%s", err, out)
	}
	f, err := analysis.LoadFleet(campaignDir(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Hosts) != 1 || f.Hosts[0].Run == nil || f.Hosts[0].Failed != "" {
		t.Fatalf("hosts %+v, want one completed run", f.Hosts)
	}
	if fails := f.Hosts[0].Run.Status.Outcome.Failures; len(fails) > 0 {
		t.Errorf("the host's failures: %v", fails)
	}
	if f.Hosts[0].Run.Status.Outcome.Services["web"] == "" {
		t.Error("the host's run.json does not describe the service")
	}
	nothingLeft(t, hosts[0])

	cmd = campaign(ctx, inv, service(filepath.Join(dir, "images", "web.tar")), t.TempDir())
	cmd.Args = append(cmd.Args, "-e", "trust_scenario=true")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "outside its directory") {
		t.Errorf("a campaign of an image outside the scenario's directory: %v\n%s", err, out)
	}
}
