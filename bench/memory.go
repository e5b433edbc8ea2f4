package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/shirou/gopsutil/v4/mem"
)

// Memory is the memory of one instance, summed over its host processes.
type Memory struct {
	RSS, PSS, USS int64
	// PSSAnon is the anonymous part of PSS: memory the instance itself
	// allocated, as opposed to file pages (its binary) that were cached
	// before it started and are not new memory.
	PSSAnon int64
}

// MemoryOf sums RSS, PSS, USS (private clean + private dirty) and the
// anonymous part of PSS over pids, from one read of each process's
// /proc/PID/smaps_rollup (Linux 4.14+; Pss_Anon from 5.9).
func MemoryOf(ctx context.Context, pids []int32) (Memory, error) {
	var m Memory
	for _, pid := range pids {
		if err := ctx.Err(); err != nil {
			return Memory{}, err
		}
		pm, err := readRollup(pid)
		if err != nil {
			return Memory{}, err
		}
		m.RSS += pm.RSS
		m.PSS += pm.PSS
		m.USS += pm.USS
		m.PSSAnon += pm.PSSAnon
	}
	return m, nil
}

func readRollup(pid int32) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("bench: memory of process %d: %w", pid, err)
	}
	defer f.Close()
	m, err := parseRollup(f)
	if err != nil {
		return Memory{}, fmt.Errorf("bench: memory of process %d: %w", pid, err)
	}
	return m, nil
}

// parseRollup reads the content of a smaps_rollup file. Values are in kB
// there. A file without Rss and Pss (a process that exited as it was read,
// a kernel thread) is an error.
func parseRollup(r io.Reader) (Memory, error) {
	var m Memory
	var seen int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(name) {
		case "Rss":
			dst = &m.RSS
			seen++
		case "Pss":
			dst = &m.PSS
			seen++
		case "Pss_Anon":
			dst = &m.PSSAnon
		case "Private_Clean", "Private_Dirty":
			dst = &m.USS
		default:
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return Memory{}, fmt.Errorf("smaps_rollup: malformed line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("smaps_rollup: %q: %w", sc.Text(), err)
		}
		*dst += kb << 10
	}
	if err := sc.Err(); err != nil {
		return Memory{}, fmt.Errorf("smaps_rollup: %w", err)
	}
	if seen < 2 {
		return Memory{}, errors.New("smaps_rollup: no Rss and Pss (has the process exited?)")
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
