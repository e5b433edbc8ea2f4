package qemu

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
	"github.com/digitalocean/go-qemu/qmp/qmptest"
)

// TestKVMEnabledDecoding checks how the driver reads QMP's query-kvm reply:
// the accelerator is what "enabled" says, whatever "present" says, and a
// QMP error is an error, not TCG.
func TestKVMEnabledDecoding(t *testing.T) {
	tests := []struct {
		name    string
		reply   any
		err     error
		want    bool
		wantErr string
	}{
		{"kvm in use", map[string]any{"return": map[string]bool{"enabled": true, "present": true}}, nil, true, ""},
		{"kvm present, tcg in use", map[string]any{"return": map[string]bool{"enabled": false, "present": true}}, nil, false, ""},
		{"no kvm", map[string]any{"return": map[string]bool{"enabled": false, "present": false}}, nil, false, ""},
		{"qmp error", nil, errors.New("CommandNotFound: The command query-kvm has not been found"), false, "query-kvm: CommandNotFound"},
		{"malformed reply", map[string]any{"return": "yes"}, nil, false, "query-kvm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			m := newMonitor(qmptest.NewMonitor(func(cmd qmp.Command) (any, error) {
				got = append(got, cmd.Execute)
				return tt.reply, tt.err
			}))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			enabled, err := m.kvmEnabled(ctx)
			if strings.Join(got, ",") != "query-kvm" {
				t.Errorf("commands sent %q, want query-kvm", got)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("kvmEnabled = %v, %v; want an error containing %q", enabled, err, tt.wantErr)
				}
				return
			}
			if err != nil || enabled != tt.want {
				t.Errorf("kvmEnabled = %v, %v; want %v", enabled, err, tt.want)
			}
		})
	}
}

// TestQuit checks that a reply lost to QEMU closing the socket counts as
// success.
func TestQuit(t *testing.T) {
	closed := newMonitor(qmptest.NewMonitor(func(cmd qmp.Command) (any, error) {
		return nil, errors.New("EOF")
	}))
	if err := closed.quit(context.Background()); err != nil {
		t.Errorf("quit with the socket closed by QEMU = %v, want nil", err)
	}
}
