package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// monitor wraps go-qemu's QMP socket monitor with what it lacks: a
// deadline on every exchange (its socket has none) and a close that is
// safe to call twice. Events are never requested, so its unbuffered events
// channel never blocks the reader, and the replies used here are far below
// its 64 KiB scanner limit.
type monitor struct {
	mon *qmp.SocketMonitor
}

// connectQMP dials the QMP socket and completes the capabilities
// handshake. The greeting arrives once QEMU's monitor runs, which marks
// the VMM as up; ctx bounds the wait.
func connectQMP(ctx context.Context, path string) (*monitor, error) {
	mon, err := qmp.NewSocketMonitor("unix", path, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("qmp: dial: %w", err)
	}
	m := &monitor{mon: mon}
	if err := m.within(ctx, mon.Connect); err != nil {
		return nil, fmt.Errorf("qmp: handshake: %w", err)
	}
	return m, nil
}

// within runs f, closing the connection (which makes f return) if ctx ends first.
func (m *monitor) within(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = m.mon.Disconnect()
		<-done
		return context.Cause(ctx)
	}
}

// run executes a QMP command and returns its "return" member.
func (m *monitor) run(ctx context.Context, command string) (json.RawMessage, error) {
	var raw []byte
	err := m.within(ctx, func() error {
		var err error
		raw, err = m.mon.Run([]byte(`{"execute":"` + command + `"}`))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("qmp: %s: %w", command, err)
	}
	var reply struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(raw, &reply); err != nil {
		return nil, fmt.Errorf("qmp: %s: %w", command, err)
	}
	return reply.Return, nil
}

// kvmEnabled asks QEMU whether KVM is in use (query-kvm "enabled"): the
// accelerator it actually runs, whatever was asked for.
func (m *monitor) kvmEnabled(ctx context.Context) (bool, error) {
	ret, err := m.run(ctx, "query-kvm")
	if err != nil {
		return false, err
	}
	var kvm struct {
		Enabled bool `json:"enabled"`
		Present bool `json:"present"`
	}
	if err := json.Unmarshal(ret, &kvm); err != nil {
		return false, fmt.Errorf("qmp: query-kvm: %w", err)
	}
	return kvm.Enabled, nil
}

// quit asks QEMU to exit. QEMU may close the socket before its reply
// arrives; that EOF means the command worked.
func (m *monitor) quit(ctx context.Context) error {
	_, err := m.run(ctx, "quit")
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (m *monitor) close() { _ = m.mon.Disconnect() }
