package state

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// Stat is what virtbench reads of a process's /proc/PID/stat.
type Stat struct {
	// State is the process state letter: R, S, D, Z (zombie), T, …
	State byte
	// PPid is the parent's PID.
	PPid int
	// Start is the start time in clock ticks after boot: with the PID it
	// identifies a process across PID reuse.
	Start uint64
}

// ReadStat reads and parses /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, fmt.Errorf("state: %w", err)
	}
	st, err := parseStat(b)
	if err != nil {
		return Stat{}, fmt.Errorf("state: /proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// parseStat parses the content of /proc/PID/stat. The command name
// (field 2) is in parentheses and may itself hold spaces and
// parentheses, so the fields after it are found from the last ')'.
func parseStat(b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("malformed: no ')' after the command name")
	}
	// fields[0] is field 3 (state), fields[1] field 4 (ppid), fields[19]
	// field 22 (starttime).
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 20 || len(fields[0]) != 1 {
		return Stat{}, fmt.Errorf("malformed: %d fields after the command name", len(fields))
	}
	ppid, err := strconv.Atoi(string(fields[1]))
	if err != nil {
		return Stat{}, fmt.Errorf("ppid: %w", err)
	}
	start, err := strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("starttime: %w", err)
	}
	return Stat{State: fields[0][0], PPid: ppid, Start: start}, nil
}
