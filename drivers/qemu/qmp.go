package qemu

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
	"github.com/digitalocean/go-qemu/qmp/raw"
)

// monitor wraps a go-qemu QMP monitor with what it lacks: a deadline on
// every exchange (its socket has none) and a close that is safe to call
// twice. Commands go through go-qemu's typed calls (qmp/raw). Events are
// never requested, so the socket monitor's unbuffered events channel never
// blocks its reader, and the replies used here are far below its 64 KiB
// scanner limit.
type monitor struct {
	mon qmp.Monitor
	raw *raw.Monitor
}

func newMonitor(mon qmp.Monitor) *monitor { return &monitor{mon: mon, raw: raw.NewMonitor(mon)} }

// connectQMP dials the QMP socket and completes the capabilities
// handshake. The greeting arrives once QEMU's monitor runs, which marks
// the VMM as up; ctx bounds the wait.
func connectQMP(ctx context.Context, path string) (*monitor, error) {
	mon, err := qmp.NewSocketMonitor("unix", path, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("qmp: dial: %w", err)
	}
	m := newMonitor(mon)
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

// kvmEnabled asks QEMU whether KVM is in use (query-kvm "enabled"): the
// accelerator it actually runs, whatever was asked for.
func (m *monitor) kvmEnabled(ctx context.Context) (bool, error) {
	var info raw.KVMInfo
	err := m.within(ctx, func() (err error) {
		info, err = m.raw.QueryKVM()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("qmp: query-kvm: %w", err)
	}
	return info.Enabled, nil
}

// quit asks QEMU to exit. QEMU may close the socket before its reply
// arrives; that EOF means the command worked, so only ctx's end is an
// error.
func (m *monitor) quit(ctx context.Context) error {
	err := m.within(ctx, m.raw.Quit)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("qmp: quit: %w", err)
	}
	return nil
}

func (m *monitor) close() { _ = m.mon.Disconnect() }

// status returns the VM's run state (query-status).
func (m *monitor) status(ctx context.Context) (raw.RunState, error) {
	var st raw.StatusInfo
	err := m.within(ctx, func() (err error) {
		st, err = m.raw.QueryStatus()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("qmp: query-status: %w", err)
	}
	return st.Status, nil
}

// ignoreShared sets the migration capability x-ignore-shared: shared RAM
// is not migrated, and the incoming side keeps the RAM its own mapping of
// the same file holds. go-qemu's generated commands (qmp/raw) predate the
// capability, so the command goes as JSON through its Monitor.Run.
func (m *monitor) ignoreShared(ctx context.Context) error {
	cmd := []byte(`{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"x-ignore-shared","state":true}]}}`)
	err := m.within(ctx, func() error {
		_, err := m.mon.Run(cmd)
		return err
	})
	if err != nil {
		return fmt.Errorf("qmp: migrate-set-capabilities x-ignore-shared: %w", err)
	}
	return nil
}

// migrateIncoming starts loading a VM's state from uri into a QEMU that
// was started with -incoming defer; with ignoreShared, as save wrote it
// with ignoreShared. It returns once the load started: see status.
func (m *monitor) migrateIncoming(ctx context.Context, uri string, ignoreShared bool) error {
	if ignoreShared {
		if err := m.ignoreShared(ctx); err != nil {
			return err
		}
	}
	if err := m.within(ctx, func() error { return m.raw.MigrateIncoming(uri) }); err != nil {
		return fmt.Errorf("qmp: migrate-incoming: %w", err)
	}
	return nil
}

// cont lets a stopped VM run.
func (m *monitor) cont(ctx context.Context) error {
	if err := m.within(ctx, m.raw.Cont); err != nil {
		return fmt.Errorf("qmp: cont: %w", err)
	}
	return nil
}

// save stops the VM and writes its state to file through a migration to
// "exec:cat > file" (QEMU 7.2 has no file: URI), and waits until the
// migration completed. With ignoreShared the RAM QEMU maps shared (a
// memory-backend-file with share=on) is left out of the state.
func (m *monitor) save(ctx context.Context, file string, ignoreShared bool) error {
	if err := m.within(ctx, m.raw.Stop); err != nil {
		return fmt.Errorf("qmp: stop: %w", err)
	}
	if ignoreShared {
		if err := m.ignoreShared(ctx); err != nil {
			return err
		}
	}
	if err := m.within(ctx, func() error { return m.raw.Migrate("exec:cat > "+file, nil, nil, nil) }); err != nil {
		return fmt.Errorf("qmp: migrate: %w", err)
	}
	for {
		var info raw.MigrationInfo
		err := m.within(ctx, func() (err error) {
			info, err = m.raw.QueryMigrate()
			return err
		})
		if err != nil {
			return fmt.Errorf("qmp: query-migrate: %w", err)
		}
		if info.Status != nil {
			switch *info.Status {
			case raw.MigrationStatusCompleted:
				return nil
			case raw.MigrationStatusFailed, raw.MigrationStatusCancelled:
				desc := ""
				if info.ErrorDesc != nil {
					desc = ": " + *info.ErrorDesc
				}
				return fmt.Errorf("qmp: migration %s%s", *info.Status, desc)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("qmp: migration: %w", context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
}
