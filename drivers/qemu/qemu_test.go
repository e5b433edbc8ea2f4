package qemu_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"virtbench/drivers"
	"virtbench/drivers/drivertest"
	"virtbench/drivers/qemu"
	"virtbench/guest"
	"virtbench/guest/vminit"
	"virtbench/images"
	"virtbench/internal/required"
	"virtbench/internal/results"
)

func TestMain(m *testing.M) {
	code := m.Run()
	drivertest.CleanupAgent()
	os.Exit(code)
}

func factory(env drivers.Env) (drivers.Driver, error) { return qemu.New(env) }

// tcg forces emulation so that the suite's figures do not depend on the host.
var tcg = drivertest.Options{ReadyTimeout: 2 * time.Minute, Options: map[string]string{"accel": "tcg"}}

func TestConformance(t *testing.T) {
	drivertest.RequiresRoot(t)
	drivertest.Run(t, "qemu", tcg)
}

func TestAcceleratorReported(t *testing.T) {
	env := drivertest.NewEnv(t, tcg)
	inst := drivertest.Start(t, factory, env, drivers.Spec{ID: "accel", Workload: "idle"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := inst.Ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Labels["accel"] != "tcg" {
		t.Errorf("accel label = %q, want tcg as QMP query-kvm reports it", r.Labels["accel"])
	}
	if len(r.Phases) != 1 || r.Phases[0].Name != "vmm" || !r.Phases[0].At.After(r.Begin) || !r.At.After(r.Phases[0].At) {
		t.Errorf("phases %+v: want vmm between begin and READY", r.Phases)
	}
	if r.GuestBoot <= 0 || r.GuestBoot > r.Startup() {
		t.Errorf("guest boot %v, startup %v: want 0 < guest boot <= startup", r.GuestBoot, r.Startup())
	}
	// The vCPU runs from before the kernel's clock starts.
	if up := time.Duration(r.Guest.UptimeSec * float64(time.Second)); r.Guest.VCPUSec <= 0 || up > r.GuestBoot+10*time.Millisecond {
		t.Errorf("guest vCPU time %vs, kernel uptime %v: want the vCPU time, at least the uptime", r.Guest.VCPUSec, up)
	}
	parts, err := inst.(drivers.MemoryParter).MemoryParts()
	if err != nil || parts["guest_ram_resident"] <= 0 || parts["vmm_overhead"] <= 0 {
		t.Errorf("memory parts %v, %v", parts, err)
	}
	// The guest's own kernel, read inside it: Debian's, with the
	// mitigations it chose on the CPU QEMU emulates.
	if k, m := r.Guest.Kernel, r.Guest.Mitigations; !strings.HasSuffix(k, "-amd64") || m == "" || m == guest.NotExposed {
		t.Errorf("guest kernel %q, mitigations %q: want Debian's kernel and its mitigations summary", k, m)
	}
}

// TestFloor: the bare QEMU starts time a start to QMP, each well under a
// VM's, and leave nothing behind in the run's state.
func TestFloor(t *testing.T) {
	drivertest.RequiresRoot(t)
	env := drivertest.NewEnv(t, tcg)
	d, err := qemu.New(env)
	if err != nil {
		t.Fatal(err)
	}
	drivertest.Check(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ms, err := d.Floor(ctx)
	if err != nil || len(ms) != qemu.FloorRuns {
		t.Fatalf("Floor = %v, %v; want %d bare starts", ms, err, qemu.FloorRuns)
	}
	for _, m := range ms {
		if m.Metric != results.MetricStartFloor || m.Unit != "sec" || m.Value <= 0 || m.Value > 30 {
			t.Errorf("floor %+v: want start_floor in seconds, between 0 and 30 s", m)
		}
	}
	left, _ := filepath.Glob(filepath.Join(env.StateDir, "qemu-floor-*"))
	if len(left) > 0 {
		t.Errorf("bare starts left %v", left)
	}
}

func TestKVM(t *testing.T) {
	if err := qemu.KVMUsable(); err != nil {
		required.Skip(t, "kvm", fmt.Sprintf("no hardware-assisted KVM (%v): run on a host with VT-x or AMD-V (kvm_intel or kvm_amd loaded, /dev/kvm read-write) to test the KVM path", err))
	}
	env := drivertest.NewEnv(t, drivertest.Options{Options: map[string]string{"accel": "kvm"}})
	inst := drivertest.Start(t, factory, env, drivers.Spec{ID: "kvm", Workload: "idle"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := inst.Ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Labels["accel"] != "kvm" {
		t.Errorf("accel = %q, want kvm", r.Labels["accel"])
	}
}

func TestForcedKVMUnavailable(t *testing.T) {
	if qemu.KVMUsable() == nil {
		required.Skip(t, "no-kvm", "this host has KVM; the refusal is tested where /dev/kvm is missing")
	}
	d, err := qemu.New(drivers.Env{Options: map[string]string{"accel": "kvm"}})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "/dev/kvm") {
		t.Errorf("Check with accel=kvm and no KVM = %v, want ErrUnavailable naming /dev/kvm", err)
	}
}

func TestFileioOnVirtioDisk(t *testing.T) {
	env := drivertest.NewEnv(t, tcg)
	inst := drivertest.Start(t, factory, env, drivers.Spec{ID: "fileio", Workload: "fileio", Args: []string{"-size", "8388608"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := inst.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	rs := drivertest.Results(t, inst, 2*time.Minute)
	if len(rs) != 2 || rs[0].Name != "fileio.write" || rs[0].Value <= 0 {
		t.Fatalf("results %+v", rs)
	}
	u, err := inst.(drivers.WritableSizer).WritableUsage()
	if err != nil || u.Allocated < 1<<20 {
		t.Errorf("qcow2 overlay usage %+v, %v: want the written data counted", u, err)
	}
}

func TestOptions(t *testing.T) {
	bad := []map[string]string{
		{"accel": "hvf"}, {"machine": "virt"}, {"devices": "emulated"}, {"memory": "0"}, {"bogus": "1"},
	}
	for _, o := range bad {
		if _, err := qemu.New(drivers.Env{Options: o}); err == nil {
			t.Errorf("New(%v) succeeded", o)
		}
	}
	if _, err := qemu.New(drivers.Env{Options: map[string]string{"machine": "pc", "devices": "emulated"}}); err != nil {
		t.Errorf("pc with emulated devices: %v", err)
	}
}

func TestGuestPanicIsAnError(t *testing.T) {
	env := drivertest.NewEnv(t, tcg)
	// The agent is PID 1: when it exits the guest kernel panics.
	inst := drivertest.Start(t, factory, env, drivers.Spec{ID: "panic", Workload: "crash"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := inst.Ready(ctx)
	if err == nil || !strings.HasPrefix(err.Error(), "qemu: guest kernel panicked: Attempted to kill init!") || ctx.Err() != nil {
		t.Errorf("Ready of a guest whose init dies = %v; want a prompt error that starts with the kernel's panic reason", err)
	}
}

// TestDebianGuest boots the full Debian guest (systemd from an ext4 disk)
// under TCG and waits for the agent, started as a service, to be ready.
func TestDebianGuest(t *testing.T) {
	drivertest.RequiresRoot(t)
	opts := drivertest.Options{Options: map[string]string{"accel": "tcg", "image": "debian"}}
	env := drivertest.NewEnv(t, opts)
	inst := drivertest.Start(t, factory, env, drivers.Spec{ID: "debian", Workload: "cpu", Args: []string{"-ops", "10"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := inst.Ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Labels["image"] != "debian" || r.GuestBoot <= 0 {
		t.Errorf("readiness %+v", r)
	}
	if rs := drivertest.Results(t, inst, 2*time.Minute); len(rs) != 1 || rs[0].Name != "cpu.sha256" {
		t.Errorf("results %+v", rs)
	}
	start := time.Now()
	sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
	defer scancel()
	if err := inst.Stop(sctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Debian guest: startup %v, in-guest boot %v, stop %v", r.Startup(), r.GuestBoot, time.Since(start))
	drivertest.CheckNothingLeft(t, env)
}

// TestTapNetwork serves HTTP in a VM with network=tap and fetches it from
// the peer namespace over the tap and the guest's NIC: virtio-net, and the
// emulated e1000 on a pc machine. The host's own interfaces never see the
// tap.
func TestTapNetwork(t *testing.T) {
	drivertest.RequiresRoot(t)
	for _, tt := range []struct {
		name string
		opts map[string]string
	}{
		{"virtio-net", map[string]string{"network": "tap", "accel": "tcg"}},
		{"e1000", map[string]string{"network": "tap", "accel": "tcg", "machine": "pc", "devices": "emulated"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			drivertest.CheckNetworkPath(t, factory, drivertest.NewEnv(t, drivertest.Options{Options: tt.opts}))
		})
	}
}

// TestSnapshotBoot makes a snapshot once and starts VMs from it: each gets
// its own workload, address and disk, reports READY without a boot, and
// serves over its own network path; the snapshot file (with boot=template
// also the RAM file) is what stays in the state directory, for the run's
// later instances. With boot=template the VMs map the template's RAM
// file, and the snapshot holds no RAM.
func TestSnapshotBoot(t *testing.T) {
	drivertest.RequiresRoot(t)
	for _, boot := range []string{qemu.BootSnapshot, qemu.BootTemplate} {
		t.Run(boot, func(t *testing.T) { testSnapshotBoot(t, boot) })
	}
}

func testSnapshotBoot(t *testing.T, boot string) {
	env := drivertest.NewEnv(t, drivertest.Options{Options: map[string]string{"accel": "tcg", "boot": boot, "network": "tap"}})
	d, err := qemu.New(env)
	if err != nil {
		t.Fatal(err)
	}
	drivertest.Check(t, d)
	var took, size, ram float64
	for _, m := range d.Prepared() {
		// What the driver reports of itself is declared, in its unit.
		if k := results.Linked().Kind(m.Metric); !results.Linked().Declared(m.Metric) || k.Unit != m.Unit || !k.Once {
			t.Errorf("Prepared %s (%s): declared %v as %+v; want a declaration, once per run, in its unit", m.Metric, m.Unit, results.Linked().Declared(m.Metric), k)
		}
		switch m.Metric {
		case qemu.MetricSnapshotCreate:
			took = m.Value
		case qemu.MetricSnapshotBytes:
			size = m.Value
		case qemu.MetricTemplateRAM:
			ram = m.Value
		}
	}
	switch {
	case took <= 0:
		t.Fatalf("Prepared() = %v: want the snapshot's creation time", d.Prepared())
	case boot == qemu.BootSnapshot && (size < 1<<20 || ram != 0):
		t.Fatalf("Prepared() = %v: want a snapshot with the RAM in it, no template RAM file", d.Prepared())
	case boot == qemu.BootTemplate && (size <= 0 || size >= 1<<20 || ram < 1<<20):
		t.Fatalf("Prepared() = %v: want a snapshot without the RAM (under 1 MiB) and a template RAM file of the pages the guest wrote", d.Prepared())
	}
	for _, spec := range []drivers.Spec{
		{ID: "snap-cpu", Workload: "cpu", Args: []string{"-ops", "5"}},
		{ID: "snap-fileio", Workload: "fileio", Args: []string{"-size", "1048576"}},
	} {
		inst, err := d.Start(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		r := drivertest.Ready(t, inst, 2*time.Minute)
		// The VMM, the restore, then the restored agent's own steps, in
		// order and before READY.
		var names []string
		for i, p := range r.Phases {
			names = append(names, p.Name)
			if i > 0 && p.At.Before(r.Phases[i-1].At) || !r.At.After(p.At) {
				t.Errorf("%s: phase %s at %v out of order (phases %+v, READY %v)", spec.ID, p.Name, p.At, r.Phases, r.At)
			}
		}
		want := []string{"vmm", "restore", vminit.StepWake, vminit.StepConsole, vminit.StepVMSetup}
		if r.Labels["boot"] != boot || r.GuestBoot != 0 || !slices.Equal(names, want) {
			t.Errorf("%s: labels %v, guest boot %v, phases %v: want a restore, no boot, phases %v", spec.ID, r.Labels, r.GuestBoot, names, want)
		}
		results := 0
		deadline := time.After(time.Minute)
	read:
		for {
			select {
			case m, ok := <-inst.Output():
				if !ok || m.Kind == guest.KindDone {
					break read
				}
				if m.Kind == guest.KindResult && m.Result.Value > 0 {
					results++
				}
			case <-deadline:
				t.Fatalf("%s: no DONE within a minute", spec.ID)
			}
		}
		if results == 0 {
			t.Errorf("%s: no result from the restored VM", spec.ID)
		}
		// The guest's RAM is found, anonymous or the template's file.
		parts, err := inst.(drivers.MemoryParter).MemoryParts()
		if err != nil || parts["guest_ram_resident"] <= 0 {
			t.Errorf("%s: MemoryParts = %v, %v; want the guest RAM's resident bytes", spec.ID, parts, err)
		}
		if err := inst.Stop(context.Background()); err != nil {
			t.Errorf("%s: Stop: %v", spec.ID, err)
		}
	}
	// The workload line reaches the guest on its console: a forged READY in
	// it is not believed, and the console does not echo the line (with
	// the clone's entropy) back into what the host keeps.
	if err := drivertest.CheckForgedReady(t, d, 2*time.Minute); err == nil || strings.Contains(err.Error(), vminit.WorkloadCommand) {
		t.Errorf("forged READY through the console: %v; want a failure without the echoed %s line", err, vminit.WorkloadCommand)
	}
	// Two restored VMs at once, each on its own address.
	drivertest.CheckNetworkPath(t, func(drivers.Env) (drivers.Driver, error) { return d, nil }, env)
	// What the driver keeps for the run's later instances: the snapshot
	// and the network peer.
	entries, _ := os.ReadDir(env.StateDir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "qemu-snapshot-") && e.Name() != "qemu-net" && (boot != qemu.BootTemplate || !strings.HasPrefix(e.Name(), "qemu-template-ram-")) {
			t.Errorf("left in the state directory: %s", e.Name())
		}
	}
}

// TestTools runs fio, iperf3, Redis and nginx from the tools disk in VMs
// with virtio and with emulated devices, the servers driven from the host
// over the tap.
func TestTools(t *testing.T) {
	drivertest.RequiresRoot(t)
	for _, devices := range []string{"virtio", "emulated"} {
		t.Run(devices, func(t *testing.T) {
			opts := map[string]string{"network": "tap", "devices": devices}
			if devices == "emulated" {
				opts["machine"] = "pc"
			}
			drivertest.CheckTools(t, factory, drivertest.NewEnv(t, drivertest.Options{Options: opts}))
		})
	}
}

// TestVMImage boots the example VM disk image (its own bootloader, kernel
// and init) through the firmware under TCG, configured by the NoCloud seed
// the driver writes: cloud-init gives the NIC the tap's address and starts
// the service, nginx, which answers over the tap. A file that is no disk
// image is refused when the driver is made.
func TestVMImage(t *testing.T) {
	drivertest.RequiresRoot(t)
	disk, err := images.BuildVMImage(drivertest.NewEnv(t, drivertest.Options{}).CacheDir)
	if err != nil {
		t.Fatal(err)
	}
	opts := drivertest.Options{Options: map[string]string{"accel": "tcg", "machine": "q35", "memory": "512", "vm_image": disk}}
	env := drivertest.NewEnv(t, opts)
	proc := &drivers.Process{Command: []string{"/usr/sbin/nginx", "-c", "/etc/nginx/nginx.conf"}, Port: images.ExamplePort}
	inst := drivertest.Start(t, factory, env, drivers.Spec{ID: "vm", Workload: guest.ServiceWorkload, Image: &images.Service{}, Process: proc})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	r, err := inst.Ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Labels["image"] != drivers.ImageVMImage {
		t.Errorf("labels %v, want image=%s", r.Labels, drivers.ImageVMImage)
	}
	dialer := inst.(drivers.Dialer)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.Dial(ctx, strconv.Itoa(images.ExamplePort))
		},
		DisableKeepAlives: true,
	}}
	var last error
	for ctx.Err() == nil {
		var resp *http.Response
		if resp, last = client.Get("http://vm/healthz"); last == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			last = fmt.Errorf("status %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if last != nil {
		t.Fatalf("the VM's nginx never answered 200: %v", last)
	}
	t.Logf("VM disk image: QEMU up after %v, nginx answered after %v", r.At.Sub(r.Begin), time.Since(r.Begin))
	sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
	defer scancel()
	if err := inst.Stop(sctx); err != nil {
		t.Fatal(err)
	}
	drivertest.CheckNothingLeft(t, env)

	bad := filepath.Join(t.TempDir(), "bad.img")
	if err := os.WriteFile(bad, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = qemu.New(drivers.Env{Options: map[string]string{"machine": "q35", "vm_image": bad}})
	if err == nil || !strings.Contains(err.Error(), "not a qcow2 or raw disk image") {
		t.Errorf("a file of zeros as vm_image: %v", err)
	}
}
