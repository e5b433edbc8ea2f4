package libvirt_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"virtbench/drivers"
	"virtbench/drivers/drivertest"
	"virtbench/drivers/internal/libvirtd"
	"virtbench/drivers/libvirt"
	"virtbench/drivers/state"
)

func TestMain(m *testing.M) {
	code := m.Run()
	drivertest.CleanupAgent()
	os.Exit(code)
}

func factory(env drivers.Env) (drivers.Driver, error) { return libvirt.New(env) }

// tcg forces emulation so that the suite's figures do not depend on the host.
var tcg = drivertest.Options{ReadyTimeout: 2 * time.Minute, Options: map[string]string{"accel": "tcg"}, Leaks: leaks}

// leaks lists the domains of env's run that libvirtd still knows.
func leaks(env drivers.Env) []string {
	l, err := libvirtd.Dial(libvirtd.Socket)
	if err != nil {
		return []string{"libvirtd: " + err.Error()}
	}
	defer l.Disconnect()
	doms, _, err := l.ConnectListAllDomains(1, 0)
	if err != nil {
		return []string{"libvirtd: " + err.Error()}
	}
	var left []string
	for _, d := range doms {
		if x, err := l.DomainGetXMLDesc(d, 0); err == nil && libvirtd.TaggedDir(x) == env.StateDir {
			left = append(left, "domain "+d.Name)
		}
	}
	return left
}

func TestConformance(t *testing.T) {
	drivertest.RequiresRoot(t)
	drivertest.Run(t, "libvirt", tcg)
}

// TestStartPhases: libvirt's phases come in order between the start and
// READY, the accelerator is QEMU's answer, the process is QEMU's and its
// memory splits as the qemu driver's; the daemons are libvirtd and
// virtlogd.
func TestStartPhases(t *testing.T) {
	drivertest.RequiresRoot(t)
	env := drivertest.NewEnv(t, tcg)
	d, err := libvirt.New(env)
	if err != nil {
		t.Fatal(err)
	}
	inst := drivertest.Start(t, func(drivers.Env) (drivers.Driver, error) { return d, nil }, env, drivers.Spec{ID: "phases", Workload: "idle"})
	r := drivertest.Ready(t, inst, 2*time.Minute)
	var names []string
	last := r.Begin
	for _, p := range r.Phases {
		names = append(names, p.Name)
		if p.At.Before(last) {
			t.Errorf("phase %s at %v, before the previous one", p.Name, p.At.Sub(r.Begin))
		}
		last = p.At
	}
	if !slices.Equal(names, []string{"define", "vmm", "start"}) || !r.At.After(last) {
		t.Errorf("phases %v: want define, vmm, start before READY", names)
	}
	if r.Labels["accel"] != "tcg" || r.Labels["machine"] != "pc" {
		t.Errorf("labels %v: want accel=tcg (QEMU's answer) on machine pc", r.Labels)
	}
	if r.GuestBoot <= 0 || r.GuestBoot > r.Startup() {
		t.Errorf("guest boot %v, startup %v", r.GuestBoot, r.Startup())
	}
	pids := inst.Processes()
	if len(pids) != 1 {
		t.Fatalf("processes %v, want QEMU's", pids)
	}
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pids[0])); err != nil || !strings.HasPrefix(filepath.Base(exe), "qemu-system") {
		t.Errorf("process %d is %q (%v), want QEMU", pids[0], exe, err)
	}
	parts, err := inst.(drivers.MemoryParter).MemoryParts()
	if err != nil || parts["guest_ram_resident"] <= 0 || parts["vmm_overhead"] <= 0 {
		t.Errorf("memory parts %v, %v", parts, err)
	}
	daemons, err := d.Daemons()
	if err != nil || len(daemons) != 2 {
		t.Fatalf("daemons %v, %v: want libvirtd and virtlogd", daemons, err)
	}
	for i, want := range []string{"libvirtd", "virtlogd"} {
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", daemons[i])); strings.TrimSpace(string(comm)) != want {
			t.Errorf("daemon %d is %q, want %s", daemons[i], comm, want)
		}
	}
}

// TestCleanRemovesTaggedDomain: a domain a killed run left is destroyed
// and undefined by clean; one that is not tagged as that run's is left.
func TestCleanRemovesTaggedDomain(t *testing.T) {
	drivertest.RequiresRoot(t)
	env := drivertest.NewEnv(t, tcg)
	d, err := libvirt.New(env)
	if err != nil {
		t.Fatal(err)
	}
	drivertest.Check(t, d)
	inst, err := d.Start(context.Background(), drivers.Spec{ID: "orphan", Workload: "idle"})
	if err != nil {
		t.Fatal(err)
	}
	// Stop is the fallback, should clean fail.
	t.Cleanup(func() { inst.Stop(context.Background()) })
	drivertest.Ready(t, inst, 2*time.Minute)
	// Another run's record naming the domain leaves it alone.
	other := t.TempDir()
	entries, _ := os.ReadDir(env.StateDir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(env.StateDir, e.Name(), state.RecordFile))
		if err != nil {
			continue
		}
		os.Mkdir(filepath.Join(other, e.Name()), 0o700)
		os.WriteFile(filepath.Join(other, e.Name(), state.RecordFile), b, 0o600)
	}
	if _, err := state.Clean(state.Orphan{Dir: other}); err == nil || !strings.Contains(err.Error(), "left alone") {
		t.Errorf("clean of another run's record = %v, want the domain left alone", err)
	}
	if l := leaks(env); len(l) != 1 {
		t.Fatalf("after another run's clean: %v, want the domain still there", l)
	}
	did, err := state.Clean(state.Orphan{Dir: env.StateDir})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(did, func(s string) bool { return strings.HasPrefix(s, "removed libvirt domain virtbench-") }) {
		t.Errorf("clean did %v, want the domain removed", did)
	}
	if l := leaks(env); len(l) > 0 {
		t.Errorf("after clean: %v", l)
	}
	select {
	case <-inst.(drivers.Exiter).Exited():
	case <-time.After(10 * time.Second):
		t.Errorf("QEMU still runs after clean")
	}
}

// TestGuests boots the qemu driver's guests through libvirt: a disk
// workload on each machine with each device model, and the full Debian
// guest booting systemd.
func TestGuests(t *testing.T) {
	drivertest.RequiresRoot(t)
	tests := []struct {
		name          string
		opts          map[string]string
		spec          drivers.Spec
		result, image string
	}{
		{"q35 virtio", map[string]string{"machine": "q35"}, drivers.Spec{Workload: "fileio", Args: []string{"-size", "4194304"}}, "fileio.write", "minimal"},
		{"pc emulated", map[string]string{"devices": "emulated"}, drivers.Spec{Workload: "fileio", Args: []string{"-size", "4194304"}}, "fileio.write", "minimal"},
		{"debian", map[string]string{"image": "debian"}, drivers.Spec{Workload: "cpu", Args: []string{"-ops", "10"}}, "cpu.sha256", "debian"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := map[string]string{"accel": "tcg"}
			for k, v := range tt.opts {
				opts[k] = v
			}
			env := drivertest.NewEnv(t, drivertest.Options{Options: opts})
			tt.spec.ID = "guest"
			inst := drivertest.Start(t, factory, env, tt.spec)
			r := drivertest.Ready(t, inst, 5*time.Minute)
			if r.Labels["image"] != tt.image {
				t.Errorf("labels %v, want image %s", r.Labels, tt.image)
			}
			if rs := drivertest.Results(t, inst, 2*time.Minute); len(rs) == 0 || rs[0].Name != tt.result || rs[0].Value <= 0 {
				t.Errorf("results %+v, want %s first", rs, tt.result)
			}
			if u, err := inst.(drivers.WritableSizer).WritableUsage(); tt.spec.Workload == "fileio" && (err != nil || u.Allocated < 1<<20) {
				t.Errorf("disk overlay usage %+v, %v: want the written data counted", u, err)
			}
		})
	}
}
