package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/load"
	"golang.org/x/sys/unix"

	"virtbench/internal/results"
)

// ProbeTime is how long each of a calibration's three probes runs, in
// three windows whose spread is the probe's noise.
const ProbeTime = 300 * time.Millisecond

// Probe measures the host's speed by a fixed, short amount of work on one
// core: SHA-256 over 64 KiB (operations per second), a copy between two
// 16 MiB buffers (bytes per second) and getppid(2) (seconds per call),
// each in three windows (its noise: the windows' spread over their
// median); meanwhile it reads how many tasks were runnable besides it.
func Probe(ctx context.Context) results.Probe {
	p := results.Probe{At: time.Now().UTC()}
	var runnable []float64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if m, err := load.MiscWithContext(ctx); err == nil {
				runnable = append(runnable, float64(m.ProcsRunning))
			}
			select {
			case <-stop:
				return
			case <-time.After(25 * time.Millisecond):
			}
		}
	}()
	window := ProbeTime / 3
	p.CPUOpsPerSec, p.CPUNoise = windows(window, cpuProbe)
	if copyWork, release, err := memProbe(); err == nil {
		p.MemBytesPerSec, p.MemNoise = windows(window, copyWork)
		release()
	}
	calls, noise := windows(window, syscallProbe)
	p.SyscallSec, p.SyscallNoise = 1/calls, noise
	close(stop)
	wg.Wait()
	if len(runnable) > 0 {
		// The probe is one runnable task and the thread reading the
		// count, running as it reads, another.
		p.OthersRunnable = max(median(runnable)-2, 0)
	}
	if l, err := load.AvgWithContext(ctx); err == nil {
		p.Load1 = l.Load1
	}
	if cs, err := cpu.InfoWithContext(ctx); err == nil && len(cs) > 0 {
		for _, c := range cs {
			p.CPUMHz += c.Mhz / float64(len(cs))
		}
	}
	return p
}

// windows runs work for three windows of d and returns the median rate
// (units of work per second) and the spread of the three over it.
func windows(d time.Duration, work func() float64) (rate, noise float64) {
	var rates []float64
	for range 3 {
		begin := time.Now()
		n := 0.0
		for time.Since(begin) < d {
			n += work()
		}
		rates = append(rates, n/time.Since(begin).Seconds())
	}
	slices.Sort(rates)
	return rates[1], (rates[2] - rates[0]) / rates[1]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// cpuProbe hashes 64 KiB 16 times: 16 operations.
func cpuProbe() float64 {
	var buf [64 << 10]byte
	for range 16 {
		sum := sha256.Sum256(buf[:])
		buf[0] = sum[0]
	}
	return 16
}

// MemProbeBytes is the memory probe's working set: two halves copied one
// into the other, more than most cores' share of last-level cache.
const MemProbeBytes = 32 << 20

// memProbe returns a work function copying one half of a MemProbeBytes
// mapping into the other (the bytes copied) and the function that unmaps
// it. The mapping is not the Go heap's, so the host has it back as soon
// as the probe ends, and virtbench's own peak memory is not raised by it
// for the rest of the run.
func memProbe() (work func() float64, release func(), err error) {
	m, err := unix.Mmap(-1, 0, MemProbeBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil, fmt.Errorf("bench: memory probe: %w", err)
	}
	a, b := m[:MemProbeBytes/2], m[MemProbeBytes/2:]
	for i := range a {
		a[i] = byte(i)
	}
	return func() float64 { return float64(copy(b, a)) }, func() { unix.Munmap(m) }, nil
}

// syscallProbe makes 1000 getppid(2) calls.
func syscallProbe() float64 {
	for range 1000 {
		syscall.Getppid()
	}
	return 1000
}

// hostWatch reads, over a run, the host's CPU steal time (what a
// hypervisor gave other guests of the CPUs this host thought it had) and
// the runnable tasks and load every few seconds.
type hostWatch struct {
	start    cpu.TimesStat
	mu       sync.Mutex
	runnable []float64
	load1    []float64
	stop     chan struct{}
	done     chan struct{}
}

// watchHost starts watching the host until the returned watch's end.
func watchHost(ctx context.Context) *hostWatch {
	w := &hostWatch{stop: make(chan struct{}), done: make(chan struct{})}
	if ts, err := cpu.TimesWithContext(ctx, false); err == nil && len(ts) > 0 {
		w.start = ts[0]
	}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(2 * time.Second):
			}
			m, err1 := load.MiscWithContext(ctx)
			l, err2 := load.AvgWithContext(ctx)
			w.mu.Lock()
			if err1 == nil {
				w.runnable = append(w.runnable, float64(m.ProcsRunning))
			}
			if err2 == nil {
				w.load1 = append(w.load1, l.Load1)
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// end stops watching and returns what it saw: the share of CPU time
// stolen, and the runnable tasks' and the load's range.
func (w *hostWatch) end(ctx context.Context) (steal float64, runnable, load1 results.Spread) {
	close(w.stop)
	<-w.done
	if ts, err := cpu.TimesWithContext(ctx, false); err == nil && len(ts) > 0 {
		total := ts[0].Total() - w.start.Total()
		if total > 0 {
			steal = 100 * (ts[0].Steal - w.start.Steal) / total
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return steal, spreadOf(w.runnable), spreadOf(w.load1)
}

func spreadOf(xs []float64) results.Spread {
	if len(xs) == 0 {
		return results.Spread{}
	}
	s := results.Spread{Min: slices.Min(xs), Max: slices.Max(xs), N: len(xs)}
	for _, x := range xs {
		s.Mean += x / float64(len(xs))
	}
	return s
}

// Calibration probes the host at a run's start (Start); its End, with
// what the host did meanwhile, completes the record.
type Calibration struct {
	rec   results.Calibration
	watch *hostWatch
}

// StartCalibration probes the host and starts watching it.
func StartCalibration(ctx context.Context) *Calibration {
	start := Probe(ctx)
	return &Calibration{rec: results.Calibration{Start: &start}, watch: watchHost(ctx)}
}

// Start returns the calibration as the run's start knows it.
func (c *Calibration) Start() *results.Calibration {
	rec := c.rec
	return &rec
}

// End probes the host again and returns the whole calibration.
func (c *Calibration) End(ctx context.Context) *results.Calibration {
	c.rec.StealPercent, c.rec.Runnable, c.rec.Load1 = c.watch.end(ctx)
	end := Probe(ctx)
	c.rec.End = &end
	rec := c.rec
	return &rec
}
