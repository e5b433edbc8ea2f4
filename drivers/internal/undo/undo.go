// Package undo keeps what an instance acquired as a stack of undo steps.
//
// A driver pushes each resource's undo as it acquires the resource (or,
// where an acquisition can fail halfway or a later step depends on it,
// just before it tries), and both its Stop and a failed Start end in Run:
// the steps run last pushed first, exactly once, and their errors are
// joined. Who owns what is then the code that acquires it, and the order
// of release is that code read backwards.
package undo

import (
	"errors"
	"sync"
)

// Stack is a stack of undo steps. The zero Stack is empty and ready to
// use; it may be used from several goroutines.
type Stack struct {
	mu    sync.Mutex
	steps []func() error
	ran   bool
	err   error
}

// Push registers f to run when the stack is undone. Pushing onto a stack
// that already ran is a bug in the caller, and panics.
func (s *Stack) Push(f func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ran {
		panic("undo: Push after Run")
	}
	s.steps = append(s.steps, f)
}

// Close pushes c.Close, ignoring its error: for descriptors and
// connections whose close cannot lose anything.
func (s *Stack) Close(c interface{ Close() error }) {
	s.Push(func() error {
		_ = c.Close()
		return nil
	})
}

// Run runs every step, the last pushed first, and returns their errors
// joined. Only the first call runs anything; later calls wait for it and
// return the same error.
func (s *Stack) Run() error { return s.RunAfter(nil) }

// RunAfter is Run preceded by first (if not nil), under the same once:
// for a Stop that asks the instance to end gracefully before the steps
// undo its start by force. first's error comes first in the result.
func (s *Stack) RunAfter(first func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ran {
		return s.err
	}
	s.ran = true
	var errs []error
	if first != nil {
		errs = append(errs, first())
	}
	for k := len(s.steps) - 1; k >= 0; k-- {
		errs = append(errs, s.steps[k]())
	}
	s.steps = nil
	s.err = errors.Join(errs...)
	return s.err
}

// OnError runs the stack when *err is not nil and joins the steps' errors
// into it. Deferred at the top of a Start with a named error result, it
// undoes whatever the failed start had acquired.
func (s *Stack) OnError(err *error) {
	if *err != nil {
		*err = errors.Join(*err, s.Run())
	}
}
