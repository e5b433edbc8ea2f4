package bench

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/process"
)

// Memory is the memory of one instance, summed over its host processes.
type Memory struct {
	RSS, PSS, USS int64
	// PSSAnon is the anonymous part of PSS: memory the instance itself
	// allocated, as opposed to file pages (its binary) that were cached
	// before it started and are not new memory.
	PSSAnon int64
}

// MemoryOf sums RSS, PSS and USS (private clean + private dirty) over pids,
// from /proc/PID/smaps_rollup through gopsutil.
func MemoryOf(ctx context.Context, pids []int32) (Memory, error) {
	var m Memory
	for _, pid := range pids {
		p, err := process.NewProcessWithContext(ctx, pid)
		if err != nil {
			return Memory{}, fmt.Errorf("bench: process %d: %w", pid, err)
		}
		maps, err := p.MemoryMapsWithContext(ctx, true)
		if err != nil {
			return Memory{}, fmt.Errorf("bench: smaps of %d: %w", pid, err)
		}
		if maps == nil || len(*maps) == 0 {
			return Memory{}, fmt.Errorf("bench: smaps of %d: empty", pid)
		}
		r := (*maps)[0]
		m.RSS += int64(r.Rss) << 10
		m.PSS += int64(r.Pss) << 10
		m.USS += int64(r.PrivateClean+r.PrivateDirty) << 10
		m.PSSAnon += pssAnon(pid)
	}
	return m, nil
}

// pssAnon reads Pss_Anon (kernel 5.9+) from /proc/PID/smaps_rollup, in bytes;
// 0 when the kernel does not report it.
func pssAnon(pid int32) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Pss_Anon:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// HostMemAvailable returns the host's MemAvailable in bytes.
func HostMemAvailable(ctx context.Context) (int64, error) {
	v, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return 0, fmt.Errorf("bench: host memory: %w", err)
	}
	return int64(v.Available), nil
}

// StableMemAvailable returns the median of five MemAvailable readings 20 ms
// apart, so that one burst of page cache activity does not decide a
// per-instance figure. virtbench first returns its own free heap to the
// OS, so that the Go scavenger releasing it later is not counted as memory
// instances gave back.
func StableMemAvailable(ctx context.Context) (int64, error) {
	debug.FreeOSMemory()
	var vs []int64
	for i := 0; i < 5; i++ {
		if i > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		v, err := HostMemAvailable(ctx)
		if err != nil {
			return 0, err
		}
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs[len(vs)/2], nil
}

// HostMemTotal returns the host's total memory in bytes.
func HostMemTotal(ctx context.Context) (int64, error) {
	v, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return 0, fmt.Errorf("bench: host memory: %w", err)
	}
	return int64(v.Total), nil
}

// SettledMemAvailable waits, up to limit, until MemAvailable stops moving
// (readings 100 ms apart that stay within 1 MiB for SettleWindow) and
// returns the last reading. Memory that stopped instances free
// asynchronously (network namespaces are torn down by a kernel worker, in
// steps about a second apart) would otherwise be counted as memory the
// next instances did not take.
func SettledMemAvailable(ctx context.Context, limit time.Duration) (int64, error) {
	debug.FreeOSMemory() // as in StableMemAvailable
	var window []int64
	for end := time.Now().Add(limit); ; {
		v, err := HostMemAvailable(ctx)
		if err != nil {
			return 0, err
		}
		window = append(window, v)
		if n := int(SettleWindow / (100 * time.Millisecond)); len(window) > n {
			window = window[len(window)-n-1:]
			if slices.Max(window)-slices.Min(window) < 1<<20 {
				return v, nil
			}
		}
		if time.Now().After(end) {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SettleWindow is how long MemAvailable must stay still to count as
// settled, and SettleLimit how long a multi-instance trial waits for that.
const (
	SettleWindow = 2 * time.Second
	SettleLimit  = 30 * time.Second
)
