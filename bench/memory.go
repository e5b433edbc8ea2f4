package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
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
	return new(procReader).memoryOf(ctx, pids)
}

func (r *procReader) memoryOf(ctx context.Context, pids []int32) (Memory, error) {
	var m Memory
	for _, pid := range pids {
		if err := ctx.Err(); err != nil {
			return Memory{}, err
		}
		b, err := r.read(pid, "smaps_rollup")
		if err != nil {
			return Memory{}, fmt.Errorf("bench: memory of process %d: %w", pid, err)
		}
		pm, err := parseRollup(b)
		if err != nil {
			return Memory{}, fmt.Errorf("bench: memory of process %d: %w", pid, err)
		}
		m.RSS += pm.RSS
		m.PSS += pm.PSS
		m.USS += pm.USS
		m.PSSAnon += pm.PSSAnon
		m.PSSShmem += pm.PSSShmem
	}
	return m, nil
}

// procReader reads files of /proc/PID into one buffer of its own, reused
// from read to read, with plain system calls: the density sampler reads
// two files of every instance at every step (thousands at a sweep's top),
// and an os.File, a Stat and a fresh buffer for each would cost it more
// than the kernel's work. A procReader is not safe for concurrent use.
type procReader struct {
	buf  []byte
	path []byte // the path's bytes, so that a read allocates only its string
}

// read returns the content of /proc/PID/NAME, valid until the next read.
func (r *procReader) read(pid int32, name string) ([]byte, error) {
	r.path = append(strconv.AppendInt(append(r.path[:0], "/proc/"...), int64(pid), 10), '/')
	r.path = append(r.path, name...)
	path := string(r.path)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if r.buf == nil {
		r.buf = make([]byte, 4096)
	}
	n := 0
	for {
		if n == len(r.buf) {
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
		m, err := unix.Read(fd, r.buf[n:])
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		case m == 0:
			return r.buf[:n], nil
		}
		n += m
	}
}

// parseRollup parses the content of a smaps_rollup file. Values are in kB
// there. A file without Rss and Pss (a process that exited as it was read,
// a kernel thread) is an error.
func parseRollup(b []byte) (Memory, error) {
	var m Memory
	var seen int
	for line := range bytes.Lines(b) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		name, rest, ok := bytes.Cut(line, []byte(":"))
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
		num, unit, ok := bytes.Cut(bytes.TrimSpace(rest), []byte(" "))
		if !ok || string(bytes.TrimSpace(unit)) != "kB" {
			return Memory{}, fmt.Errorf("smaps_rollup: malformed line %q", line)
		}
		kb, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("smaps_rollup: %q: %w", line, err)
		}
		*dst += kb << 10
	}
	if seen < 2 {
		return Memory{}, errors.New("smaps_rollup: no Rss and Pss (has the process exited?)")
	}
	return m, nil
}
