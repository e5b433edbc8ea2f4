package bench

import (
	"context"
	"fmt"

	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/process"
)

// Memory is the memory of one instance, summed over its host processes.
type Memory struct {
	RSS, PSS, USS int64
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
	}
	return m, nil
}

// HostMemAvailable returns the host's MemAvailable in bytes.
func HostMemAvailable(ctx context.Context) (int64, error) {
	v, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return 0, fmt.Errorf("bench: host memory: %w", err)
	}
	return int64(v.Available), nil
}

// HostMemTotal returns the host's total memory in bytes.
func HostMemTotal(ctx context.Context) (int64, error) {
	v, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return 0, fmt.Errorf("bench: host memory: %w", err)
	}
	return int64(v.Total), nil
}
