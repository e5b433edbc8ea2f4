package analysis

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"virtbench/internal/results"
)

// Run is what an analysis is made of, all of it read back from a run
// directory: its records and its measurements, read with the vocabulary
// the run recorded, so that an analysis can be made again from the raw
// samples by a program that links nothing of the drivers.
type Run struct {
	Dir        string
	Provenance results.Provenance
	Status     results.Status
	// Vocabulary is the meaning of the run's names: the run's own
	// (Status.Vocabulary), or for a run of an older virtbench this
	// program's linked declarations (a warning says so).
	Vocabulary results.Vocabulary
	// Measurements are the measured values by series (results.Measurements).
	Measurements *results.Measurements
	// Warnings say what was wrong with the run directory but could be
	// read around (a torn last line, an unfinished run, an excluded
	// trial, a vocabulary missing).
	Warnings []string
}

// ErrNotRun reports a directory that holds no run.
var ErrNotRun = errors.New("not a run directory (no samples.jsonl, env.json or run.json)")

// isRunDir reports whether dir holds a run's three records, whatever
// they are: Load then refuses one that is not a regular file, or is a
// link, naming it.
func isRunDir(dir string) bool {
	for _, f := range []string{results.SamplesFile, results.EnvFile, results.StatusFile} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

// Load reads a run directory: env.json, run.json (with the vocabulary the
// run recorded) and samples.jsonl, a sample at a time into Measurements.
// Every file is opened through no link. A torn last line of samples.jsonl
// is dropped and noted in Warnings.
func Load(dir string) (*Run, error) {
	r := &Run{Dir: dir}
	if info, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("analysis: %w", err)
	} else if !info.IsDir() {
		return nil, fmt.Errorf("analysis: %s: %w", dir, ErrNotRun)
	}
	if !isRunDir(dir) {
		return nil, fmt.Errorf("analysis: %s: %w", dir, ErrNotRun)
	}
	if err := results.ReadJSON(dir, results.EnvFile, &r.Provenance); err != nil {
		return nil, err
	}
	if err := results.ReadJSON(dir, results.StatusFile, &r.Status); err != nil {
		return nil, err
	}
	if v := r.Status.Vocabulary; v != nil {
		r.Vocabulary = *v
	} else {
		r.Vocabulary = results.Linked()
		r.Warnings = append(r.Warnings, "run.json has no vocabulary (a run of a virtbench from before 2026-12): its metrics, labels and workloads are read as this virtbench declares them")
	}
	var err error
	r.Measurements, err = results.ReadMeasurements(filepath.Join(dir, results.SamplesFile), r.Vocabulary)
	switch {
	case errors.Is(err, results.ErrTornLine):
		r.Warnings = append(r.Warnings, err.Error())
	case err != nil:
		return nil, err
	}
	if r.Status.Vocabulary == nil {
		if missing := r.Vocabulary.MissingIn(r.Measurements); len(missing) > 0 {
			r.Warnings = append(r.Warnings, "this virtbench does not declare what the run names, left uninterpreted: "+missing)
		}
	}
	if r.Status.State == results.StateRunning {
		r.Warnings = append(r.Warnings, Unfinished(r.Status))
	}
	for _, why := range r.Measurements.Excluded {
		r.Warnings = append(r.Warnings, "a trial's samples are left out of the summaries: "+why)
	}
	return r, nil
}

// Unfinished says that a run's records are those of a run still going (or
// of a virtbench that died before it could say how it ended).
func Unfinished(st results.Status) string {
	return fmt.Sprintf("the run is unfinished: run.json says it is still running (PID %d, started %s), so this covers only what it measured so far, or until its virtbench died (virtbench clean marks such a run)",
		st.PID, st.Started.Format(time.RFC3339))
}

// HostSize is the size of a host to plan capacity for: the run's own
// host, or one the user names (virtbench report --host-mem).
type HostSize struct {
	Name        string
	MemoryBytes int64
	// MemAvailableBytes is what the host had available before the
	// instances (0: unknown, an empty host: all of MemoryBytes).
	MemAvailableBytes int64
	// Ran marks the host the run ran on: where a variant recorded the
	// host's MemAvailable before its instances, that is its budget's start.
	Ran  bool
	CPUs int
	// CPULimit is a CPU quota in cores below CPUs (a cgroup's), 0 for none.
	CPULimit float64
	// PidsMax is how many tasks the host can hold (0: unknown, not a
	// limit) and TasksInUse how many it held before the instances.
	PidsMax, TasksInUse int64
	// DiskFreeBytes is the free space for writable layers (0: unknown).
	DiskFreeBytes int64
}

// ThisHost is the name of the run's own host in capacity estimates.
const ThisHost = "this host"

// hostSizes returns the run's host and the planned one, if any, for
// capacity estimates. The planned host has this host's pid limit and free
// disk unless it says otherwise.
func (r *Run) hostSizes(plan *HostSize) []HostSize {
	p := r.Provenance
	here := HostSize{Name: ThisHost, Ran: true, MemoryBytes: p.MemoryBytes, MemAvailableBytes: p.MemAvailableBytes, CPUs: p.Cores, CPULimit: p.CPULimitCores,
		PidsMax: p.PidsMax, TasksInUse: p.TasksInUse, DiskFreeBytes: p.DiskFreeBytes}
	if p.MemoryLimitBytes > 0 {
		// The budget is what virtbench may use: its cgroup's limit.
		here.MemoryBytes = min(here.MemoryBytes, p.MemoryLimitBytes)
	}
	hs := []HostSize{here}
	if plan != nil {
		pl := *plan
		if pl.PidsMax == 0 {
			pl.PidsMax, pl.TasksInUse = here.PidsMax, here.TasksInUse
		}
		if pl.DiskFreeBytes == 0 {
			pl.DiskFreeBytes = here.DiskFreeBytes
		}
		hs = append(hs, pl)
	}
	return hs
}
