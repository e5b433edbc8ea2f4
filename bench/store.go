package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Store appends samples to DIR/samples.jsonl, one write per sample, so that
// a run killed at any point keeps every sample taken before. It is safe for
// concurrent use.
type Store struct {
	dir string
	mu  sync.Mutex
	f   *os.File
	all []Sample
}

// Run directory file names.
const (
	SamplesFile = "samples.jsonl"
	EnvFile     = "env.json"
	StatusFile  = "run.json"
)

// CreateStore creates the run directory dir (mode 0755, not world-writable)
// and its samples file. dir must not already hold samples.
func CreateStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: run directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, SamplesFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("bench: %w (choose another --out)", err)
	}
	return &Store{dir: dir, f: f}, nil
}

// Dir returns the run directory.
func (s *Store) Dir() string { return s.dir }

// Add writes one sample.
func (s *Store) Add(smp Sample) error {
	b, err := json.Marshal(smp)
	if err != nil {
		return fmt.Errorf("bench: encode sample: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("bench: write sample: %w", err)
	}
	s.all = append(s.all, smp)
	return nil
}

// Samples returns a copy of the samples added so far.
func (s *Store) Samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sample(nil), s.all...)
}

// Close syncs and closes the samples file.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.f.Sync(); err != nil {
		s.f.Close()
		return fmt.Errorf("bench: sync samples: %w", err)
	}
	return s.f.Close()
}

// WriteJSON writes v as indented JSON to name in the run directory,
// atomically (a temporary file renamed into place).
func WriteJSON(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: encode %s: %w", name, err)
	}
	return WriteFileAtomic(filepath.Join(dir, name), append(b, '\n'))
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory and a rename, so readers never see a partial file.
func WriteFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("bench: write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("bench: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("bench: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// Status is the content of run.json: what the run was and how it ended.
// It is written when the run starts (State "running") and rewritten when
// it ends, so a run directory whose State stays "running" after its PID is
// gone belongs to a virtbench that was killed.
type Status struct {
	Scenario    string    `json:"scenario"`
	Description string    `json:"description,omitempty"`
	Args        []string  `json:"args,omitempty"`
	PID         int       `json:"pid"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished,omitzero"`
	// State is running, completed, failed, interrupted or killed.
	State string `json:"state"`
	// Reason says why a run did not complete.
	Reason  string  `json:"reason,omitempty"`
	Outcome Outcome `json:"outcome"`
}

// Run states.
const (
	StateRunning     = "running"
	StateCompleted   = "completed"
	StateFailed      = "failed"
	StateInterrupted = "interrupted"
	// StateKilled marks a run whose virtbench was killed (found by clean).
	StateKilled = "killed"
)

// ReadJSON reads name in dir into v.
func ReadJSON(dir, name string, v any) error {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("bench: %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}
