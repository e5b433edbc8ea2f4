package undo

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

func TestRun(t *testing.T) {
	errA, errB := errors.New("a failed"), errors.New("b failed")
	tests := []struct {
		name     string
		first    func() error
		steps    []error // step k returns steps[k]
		wantRan  []string
		wantErrs []error
	}{
		{name: "empty"},
		{name: "reverse order", steps: []error{nil, nil, nil}, wantRan: []string{"step2", "step1", "step0"}},
		{name: "errors joined, every step runs", steps: []error{errA, nil, errB}, wantRan: []string{"step2", "step1", "step0"}, wantErrs: []error{errA, errB}},
		{name: "first before the steps", first: func() error { return errA }, steps: []error{nil}, wantRan: []string{"first", "step0"}, wantErrs: []error{errA}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Stack
			var ran []string
			for k, e := range tt.steps {
				s.Push(func() error {
					ran = append(ran, "step"+string(rune('0'+k)))
					return e
				})
			}
			var first func() error
			if tt.first != nil {
				first = func() error {
					ran = append(ran, "first")
					return tt.first()
				}
			}
			err := s.RunAfter(first)
			if !slices.Equal(ran, tt.wantRan) {
				t.Errorf("ran %v, want %v", ran, tt.wantRan)
			}
			for _, want := range tt.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("error %v does not hold %v", err, want)
				}
			}
			if len(tt.wantErrs) == 0 && err != nil {
				t.Errorf("error %v, want none", err)
			}
			ran = nil
			if again := s.Run(); again != err || len(ran) != 0 {
				t.Errorf("second Run ran %v and returned %v; want nothing run and %v", ran, again, err)
			}
		})
	}
}

func TestRunOnceConcurrently(t *testing.T) {
	var s Stack
	var mu sync.Mutex
	runs := 0
	s.Push(func() error {
		mu.Lock()
		runs++
		mu.Unlock()
		return nil
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { _ = s.Run() })
	}
	wg.Wait()
	if runs != 1 {
		t.Errorf("the step ran %d times, want once", runs)
	}
}

func TestOnError(t *testing.T) {
	errStart, errUndo := errors.New("start failed"), errors.New("undo failed")
	for _, failed := range []bool{false, true} {
		var s Stack
		undone := false
		s.Push(func() error {
			undone = true
			return errUndo
		})
		start := func() (err error) {
			defer s.OnError(&err)
			if failed {
				return errStart
			}
			return nil
		}
		err := start()
		if undone != failed {
			t.Errorf("failed=%v: undone=%v", failed, undone)
		}
		if failed && (!errors.Is(err, errStart) || !errors.Is(err, errUndo)) {
			t.Errorf("failed start returned %v, want both the start's and the undo's error", err)
		}
		if !failed && err != nil {
			t.Errorf("good start returned %v", err)
		}
	}
}

func TestPushAfterRunPanics(t *testing.T) {
	var s Stack
	_ = s.Run()
	defer func() {
		if recover() == nil {
			t.Error("Push after Run did not panic")
		}
	}()
	s.Push(func() error { return nil })
}
