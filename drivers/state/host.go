package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// What one host's virtbench processes share, whatever state root each
// uses (VIRTBENCH_STATE): the lock under which a run checks for the others
// and claims its place, the registry of the runs going on, and the record
// of who holds the host's KSM settings changed (KSMHoldsFile). Host-wide
// settings are held host-wide, so that a run cannot miss another because
// the two keep their state apart.

// HostEnv overrides the host-wide directory (HostDir): tests keep their
// runs apart from the host's with it.
const HostEnv = "VIRTBENCH_HOST_STATE"

// HostRoot is the host-wide directory when virtbench runs as root: on
// /run, a tmpfs that a reboot empties, as it resets what the records there
// speak of (processes, KSM's settings).
const HostRoot = "/run/virtbench"

// HostDir returns the host-wide directory: $VIRTBENCH_HOST_STATE, else
// HostRoot as root, else a directory of the user's in the temp directory.
func HostDir() string {
	if d := os.Getenv(HostEnv); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return HostRoot
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("virtbench-host-%d", os.Geteuid()))
}

// runsDir, in the host-wide directory, holds a record per run going on.
const runsDir = "runs"

// LockHost takes the host-wide lock (made, with its directory, if
// needed); it returns the function that releases it. The directory is
// checked as a state root is (CheckRoot).
func LockHost(dir string) (func(), error) { return LockRoot(dir) }

// RegisterRun records, in the host-wide directory dir, that o (this
// process) runs: ActiveRuns lists it to the host's other virtbench
// processes until the returned function removes it, or o exits. Call it
// under LockHost.
func RegisterRun(dir string, o Owner) (func(), error) {
	if err := os.MkdirAll(filepath.Join(dir, runsDir), 0o700); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	path := filepath.Join(dir, runsDir, fmt.Sprintf("%d-%d.json", o.Pid, o.Start))
	if err := writeJSON(path, o); err != nil {
		return nil, err
	}
	return func() { os.Remove(path) }, nil
}

// ActiveRuns returns the runs registered in the host-wide directory dir
// whose virtbench still runs, other than this process; it removes the
// records of runs whose virtbench is gone. Call it under LockHost.
func ActiveRuns(dir string) ([]Owner, error) {
	entries, err := os.ReadDir(filepath.Join(dir, runsDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var out []Owner
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(dir, runsDir, e.Name())
		var o Owner
		b, err := os.ReadFile(path)
		if err != nil || json.Unmarshal(b, &o) != nil || !o.Alive() {
			os.Remove(path)
			continue
		}
		if o.Pid != os.Getpid() {
			out = append(out, o)
		}
	}
	return out, nil
}

// CleanHost lets go, in the host-wide directory host, of what virtbench
// processes that no longer run held: their KSM holds (the settings come
// back once no holder runs, ReleaseKSM) and their run records. virtbench
// clean calls it whatever state root it cleans, so that a run killed
// under another root leaves no host setting changed. It returns what it
// did, one line per action.
func CleanHost(host string) ([]string, error) {
	var did []string
	restored, err := ReleaseKSM(host)
	if k := restored; k != nil {
		did = append(did, fmt.Sprintf("restored the host's KSM settings: run=%d pages_to_scan=%d sleep_millisecs=%d", k.Run, k.PagesToScan, k.SleepMillisecs))
	}
	unlock, lerr := LockHost(host)
	if lerr != nil {
		return did, errors.Join(err, lerr)
	}
	defer unlock()
	_, aerr := ActiveRuns(host)
	return did, errors.Join(err, aerr)
}
