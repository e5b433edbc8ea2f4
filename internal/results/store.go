package results

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"virtbench/internal/safefile"
)

// Store appends samples to DIR/samples.jsonl, one write per sample, so that
// a run killed at any point keeps every sample taken before. It is safe for
// concurrent use.
type Store struct {
	dir string
	mu  sync.Mutex
	f   *os.File
	// size is the length of the file's whole lines: a failed write is
	// cut back to it, so the file never ends on a torn line.
	size int64
	err  error // the first failed write; every later Add returns it
	// n counts the samples written.
	n int
	// run marks every sample the store writes (Sample.Run).
	run string
}

// Run directory file names.
const (
	SamplesFile = "samples.jsonl"
	EnvFile     = "env.json"
	StatusFile  = "run.json"
)

// CreateStore creates the run directory dir (mode 0755, not world-writable)
// and its samples file. dir must not exist or be empty: a run never writes
// over files it did not make.
func CreateStore(dir string) (*Store, error) {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("results: run directory %s exists and is not empty: give --out a new or empty directory", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("results: run directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, SamplesFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("results: %w (choose another --out)", err)
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		f.Close()
		return nil, fmt.Errorf("results: %w", err)
	}
	return &Store{dir: dir, f: f, run: hex.EncodeToString(id)}, nil
}

// Dir returns the run directory.
func (s *Store) Dir() string { return s.dir }

// Add writes one sample.
func (s *Store) Add(smp Sample) error {
	smp.Run = s.run
	b, err := json.Marshal(smp)
	if err != nil {
		return fmt.Errorf("results: encode sample: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	n, err := s.f.Write(append(b, '\n'))
	if err != nil {
		if n > 0 {
			// Cut the torn line off; the file keeps only whole samples.
			_ = s.f.Truncate(s.size)
		}
		s.err = fmt.Errorf("results: write sample to %s: %w", s.f.Name(), err)
		return s.err
	}
	s.size += int64(n)
	s.n++
	return nil
}

// Len returns how many samples were written.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Close syncs and closes the samples file.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.f.Sync(); err != nil {
		s.f.Close()
		return fmt.Errorf("results: sync samples: %w", err)
	}
	return s.f.Close()
}

// WriteJSON writes v as indented JSON to name in the run directory,
// atomically (a temporary file renamed into place).
func WriteJSON(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("results: encode %s: %w", name, err)
	}
	return WriteFileAtomic(filepath.Join(dir, name), append(b, '\n'))
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory and a rename, so readers never see a partial file.
func WriteFileAtomic(path string, data []byte) error {
	return WriteFilesAtomic(filepath.Dir(path), []File{{Name: filepath.Base(path), Data: data}})
}

// File is a named file's content, for WriteFilesAtomic: Data, or what
// Write writes when it is set (streamed, so that a large file is never
// held whole in memory).
type File struct {
	Name  string
	Data  []byte
	Write func(io.Writer) error
}

// WriteFilesAtomic writes files into dir all together: each goes to a
// temporary file first, and only once every one is written are they
// renamed into place. When a write fails, the temporary files are removed
// and dir is as it was.
func WriteFilesAtomic(dir string, files []File) error {
	tmps := make([]string, 0, len(files))
	fail := func(err error) error {
		for _, t := range tmps {
			os.Remove(t)
		}
		return err
	}
	for _, f := range files {
		tmp, err := os.CreateTemp(dir, "."+f.Name+".tmp")
		if err != nil {
			return fail(fmt.Errorf("results: %w", err))
		}
		tmps = append(tmps, tmp.Name())
		err = f.writeTo(tmp)
		err = errors.Join(err, tmp.Chmod(0o644), tmp.Close())
		if err != nil {
			return fail(fmt.Errorf("results: write %s: %w", filepath.Join(dir, f.Name), err))
		}
	}
	for i, f := range files {
		if err := os.Rename(tmps[i], filepath.Join(dir, f.Name)); err != nil {
			return fail(fmt.Errorf("results: %w", err))
		}
	}
	return nil
}

func (f File) writeTo(w io.Writer) error {
	if f.Write == nil {
		_, err := w.Write(f.Data)
		return err
	}
	bw := bufio.NewWriter(w)
	if err := f.Write(bw); err != nil {
		return err
	}
	return bw.Flush()
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
	Reason string `json:"reason,omitempty"`
	// SharedWith lists the other runs that ran on the host at the same
	// time (virtbench run --concurrent): host-wide figures (MemAvailable
	// drop, host CPU) include their instances.
	SharedWith []string `json:"shared_with,omitempty"`
	// Output notes what happened to the run's terminal output, e.g. that
	// it was closed early (SIGPIPE) and the run went on without it.
	Output  string  `json:"output,omitempty"`
	Outcome Outcome `json:"outcome"`
	// Vocabulary is the meaning of every name the run's records use,
	// written when the run starts (Linked): a run directory describes
	// itself. nil in runs of a virtbench from before 2026-12.
	Vocabulary *Vocabulary `json:"vocabulary,omitempty"`
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

// MaxJSONBytes bounds a run directory's JSON record: real ones are a few
// kilobytes (run.json lists at most 50 failures).
const MaxJSONBytes = 16 << 20

// ReadJSON reads name in dir into v. It reads a regular file of at most
// MaxJSONBytes only, reached through no link (safefile.OpenIn), and its
// errors quote nothing of it (JSONError).
func ReadJSON(dir, name string, v any) error {
	b, err := safefile.ReadFileIn(dir, name, MaxJSONBytes)
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("results: %s: %w", filepath.Join(dir, name), JSONError(err))
	}
	return nil
}
