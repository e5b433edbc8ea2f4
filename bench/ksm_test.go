package bench

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"virtbench/drivers"
	"virtbench/drivers/drivertest"
	"virtbench/drivers/state"
	"virtbench/internal/ksm"
	"virtbench/internal/results"
)

// fakeKSM is a KSM directory served by a goroutine that acts as ksmd:
// while run is 1 it counts full scans and merges sharing pages per
// running instance of f; run=2 unmerges.
type fakeKSM struct {
	dir  string
	stop chan struct{}
	wg   sync.WaitGroup
}

func newFakeKSM(t *testing.T, f *fake, perInstance int) *fakeKSM {
	k := &fakeKSM{dir: t.TempDir(), stop: make(chan struct{})}
	for name, v := range map[string]int{"run": 0, "pages_to_scan": 123, "sleep_millisecs": 45, "pages_shared": 0, "pages_sharing": 0, "full_scans": 0} {
		k.set(t, name, v)
	}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		scans := 0
		for {
			select {
			case <-k.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			switch k.get("run") {
			case 1:
				scans++
				f.mu.Lock()
				n := f.running
				f.mu.Unlock()
				k.set(t, "full_scans", scans)
				k.set(t, "pages_sharing", n*perInstance)
				k.set(t, "pages_shared", min(n, 1)*perInstance/10)
			case 2:
				k.set(t, "pages_sharing", 0)
				k.set(t, "pages_shared", 0)
			}
		}
	}()
	t.Cleanup(func() { close(k.stop); k.wg.Wait() })
	return k
}

// set writes a knob as sysfs would: a reader sees the old or the new
// value, never an empty file.
func (k *fakeKSM) set(t *testing.T, name string, v int) {
	tmp := filepath.Join(k.dir, "."+name)
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(v)+"\n"), 0o644); err != nil {
		t.Error(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, name)); err != nil {
		t.Error(err)
	}
}

func (k *fakeKSM) get(name string) int {
	b, _ := os.ReadFile(filepath.Join(k.dir, name))
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// TestKSMVariant runs a variant with host.ksm=on beside one without: only
// its trials merge and record KSM's counters and the saving per
// instance, and the host's settings are back as they were afterwards,
// also when the run is interrupted.
func TestKSMVariant(t *testing.T) {
	f := &fake{}
	useFake(t, f)
	k := newFakeKSM(t, f, 2500)
	run := func(ctx context.Context, src string) ([]results.Sample, error) {
		store, err := results.CreateStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		root := t.TempDir()
		stateDir := filepath.Join(root, "run-t")
		if err := os.Mkdir(stateDir, 0o700); err != nil {
			t.Fatal(err)
		}
		host := t.TempDir()
		r := &Runner{Scenario: scenario(t, src), Env: drivers.Env{Agent: drivertest.Agent(t), StateDir: stateDir},
			Sink: store.Add, KSMDir: k.dir, KSMWindow: 50 * time.Millisecond, HostDir: host}
		_, err = r.Run(ctx)
		if _, serr := os.Stat(filepath.Join(host, state.KSMHoldsFile)); serr == nil {
			t.Error("the KSM record outlived the run")
		}
		back, _ := results.ReadSamples(filepath.Join(store.Dir(), results.SamplesFile), results.Linked())
		return back, err
	}
	want := ksm.Settings{Run: 0, PagesToScan: 123, SleepMillisecs: 45}
	samples, err := run(context.Background(), "name: t\ndrivers:\n  - {name: plain, driver: fake}\n  - {name: merged, driver: fake, options: {host.ksm: \"on\"}}\nworkloads: [idle]\ninstances: [2]\nreps: 2\nwarmup: 0\nsettle: 0s\n")
	if err != nil {
		t.Fatal(err)
	}
	saved := 0
	for _, s := range samples {
		if !strings.HasPrefix(s.Metric, "ksm_") {
			continue
		}
		if s.Variant != "merged" || s.Failed() {
			t.Errorf("KSM sample of %s: %+v", s.Variant, s)
		}
		if s.Metric == results.MetricKSMSaved {
			saved++
			if s.Value != 2500*float64(os.Getpagesize()) || s.Labels["settled"] != "true" {
				t.Errorf("saved per instance %v (labels %v), want 2500 pages, settled", s.Value, s.Labels)
			}
		}
	}
	if saved != 2 {
		t.Errorf("%d ksm_saved_per_inst samples, want one per rep of merged", saved)
	}
	if got, _ := ksm.Read(k.dir); got != want {
		t.Errorf("KSM after the run %+v, want the settings found %+v", got, want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	f.onStart = func(int) { cancel() }
	defer func() { f.onStart = nil }()
	if _, err := run(ctx, "name: t\ndrivers:\n  - {name: merged, driver: fake, options: {host.ksm: \"on\"}}\nworkloads: [idle]\nreps: 5\nwarmup: 0\nsettle: 0s\n"); err == nil {
		t.Error("interrupted run returned no error")
	}
	if got, _ := ksm.Read(k.dir); got != want {
		t.Errorf("KSM after an interrupted run %+v, want %+v", got, want)
	}
}
