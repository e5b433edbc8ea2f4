package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"virtbench/internal/ksm"
)

// KSMHoldsFile, in the host-wide directory (HostDir), records who holds
// the host's KSM settings changed and what they were before the first
// holder changed them: runs at once (virtbench run --concurrent), whatever
// their state roots, share one record, so that the settings come back
// when the last holder lets go, not when the first does.
const KSMHoldsFile = "ksm-holds.json"

// KSMHolds is the content of KSMHoldsFile.
type KSMHolds struct {
	// Dir is where KSM's knobs are (ksm.Dir, or a fake in tests).
	Dir string `json:"dir"`
	// Saved are the host's settings before the first holder changed them.
	Saved ksm.Settings `json:"saved"`
	// Holders are the virtbench processes that hold them changed.
	Holders []Process `json:"holders"`
}

// HoldKSM records, in the host-wide directory host, that this process
// holds the host's KSM settings (in dir) changed: the first holder records
// the settings it finds, later ones (or a run after a holder that crashed)
// keep that record. It holds the host-wide lock meanwhile.
func HoldKSM(host, dir string) error {
	self, err := Self()
	if err != nil {
		return err
	}
	return withHolds(host, func(h *KSMHolds) error {
		h.drop(self)
		if len(h.Holders) == 0 && h.Dir == "" {
			cur, err := ksm.Read(dir)
			if err != nil {
				return err
			}
			h.Dir, h.Saved = dir, cur
		}
		h.Holders = append(h.Holders, self)
		return nil
	})
}

// ReleaseKSM lets go, in the host-wide directory host, of this process's
// hold (HoldKSM) and of any holder that no longer runs; when no holder is
// left, it puts the recorded settings back (ksm.Restore) and removes the
// record. It returns the settings it put back, or nil when it left them.
// virtbench clean calls it for holders that crashed, from any state root.
func ReleaseKSM(host string) (restored *ksm.Settings, err error) {
	self, err := Self()
	if err != nil {
		return nil, err
	}
	err = withHolds(host, func(h *KSMHolds) error {
		h.drop(self)
		if len(h.Holders) > 0 || h.Dir == "" {
			return nil
		}
		if err := ksm.Restore(h.Dir, h.Saved); err != nil {
			return err
		}
		saved := h.Saved
		restored = &saved
		*h = KSMHolds{}
		return nil
	})
	return restored, err
}

// drop removes self and every holder that no longer runs.
func (h *KSMHolds) drop(self Process) {
	h.Holders = slices.DeleteFunc(h.Holders, func(p Process) bool { return !p.Alive() || p == self })
}

// withHolds runs fn on the host's KSM holds under the host-wide lock,
// then writes them back, or removes the file when they are empty.
func withHolds(host string, fn func(*KSMHolds) error) error {
	unlock, err := LockHost(host)
	if err != nil {
		return err
	}
	defer unlock()
	path := filepath.Join(host, KSMHoldsFile)
	var h KSMHolds
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("state: %w", err)
	default:
		if err := json.Unmarshal(b, &h); err != nil {
			return fmt.Errorf("state: %s: %w", path, err)
		}
	}
	if err := fn(&h); err != nil {
		return err
	}
	if h.Dir == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("state: %w", err)
		}
		return nil
	}
	return writeJSON(path, h)
}
