package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Memory is the memory of one instance, summed over its host processes.
type Memory struct {
	RSS, PSS, USS int64
	// PSSAnon is the anonymous part of PSS: memory the instance itself
	// allocated, as opposed to file pages (its binary) that were cached
	// before it started and are not new memory.
	PSSAnon int64
	// PSSShmem is the shmem part of PSS (memfd and tmpfs pages: gVisor's
	// memory file): memory of the instance's own that is not anonymous.
	PSSShmem int64
}

// MemoryOf sums RSS, PSS, USS (private clean + private dirty) and the
// anonymous part of PSS over pids, from one read of each process's
// /proc/PID/smaps_rollup (Linux 4.14+; Pss_Anon from 5.9). gopsutil reads
// the same file (MemoryMaps, grouped) but keeps no Pss_Anon, which the
// instance's own memory is measured by.
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
		m.PSSShmem += pm.PSSShmem
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
		case "Pss_Shmem":
			dst = &m.PSSShmem
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
