package bench

import (
	"context"
	"fmt"
	"os"
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
// per-instance figure.
func StableMemAvailable(ctx context.Context) (int64, error) {
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
// (three readings 100 ms apart within 1 MiB of each other) and returns the
// last reading. Memory that stopped instances free asynchronously (network
// namespaces are torn down by a kernel worker) would otherwise be counted
// as memory the next instances did not take.
func SettledMemAvailable(ctx context.Context, limit time.Duration) (int64, error) {
	prev, err := HostMemAvailable(ctx)
	if err != nil {
		return 0, err
	}
	still := 0
	for end := time.Now().Add(limit); time.Now().Before(end) && still < 2; {
		time.Sleep(100 * time.Millisecond)
		cur, err := HostMemAvailable(ctx)
		if err != nil {
			return 0, err
		}
		if d := cur - prev; d < 1<<20 && d > -(1<<20) {
			still++
		} else {
			still = 0
		}
		prev = cur
	}
	return prev, nil
}
