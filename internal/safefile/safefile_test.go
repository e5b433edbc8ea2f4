package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(small, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		limit   int64
		want    string
		wantErr string
	}{
		{small, 5, "12345", ""},
		{link, 5, "12345", ""},
		{small, 4, "", "larger than 4 bytes"},
		{fifo, 10, "", "not a regular file: a FIFO"},
		{"/dev/zero", 10, "", "not a regular file: a device"},
		{dir, 10, "", "not a regular file: a directory"},
		{filepath.Join(dir, "none"), 10, "", "no such file"},
	}
	for _, tt := range tests {
		got, err := ReadFile(tt.path, tt.limit)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("ReadFile(%s) = %q, %v; want an error naming it with %q", tt.path, got, err, tt.wantErr)
			}
			if strings.Contains(tt.wantErr, "regular") && !errors.Is(err, ErrNotRegular) {
				t.Errorf("ReadFile(%s) error %v is not ErrNotRegular", tt.path, err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("ReadFile(%s) = %q, %v; want %q", tt.path, got, err, tt.want)
		}
	}
}

// TestOpenIn: a file inside the directory is read; a link anywhere on the
// way (to a file outside, to a directory outside, to a file inside), a
// path that climbs out and anything but a regular file are refused, and
// the error names the path, never what a file holds.
func TestOpenIn(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "shadow")
	if err := os.WriteFile(secret, []byte("root:SECRET"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{"host/run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "host/run/env.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"host/run/linked.json": secret,
		"host/out":             outside,
		"host/inside.json":     filepath.Join(dir, "host/run/env.json"),
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "host/fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rel, wantErr string
	}{
		{"host/run/env.json", ""},
		{"host/run/linked.json", "symbolic link"},
		{"host/out/shadow", "symbolic link"},
		{"host/inside.json", "symbolic link"},
		{"host/../../" + filepath.Base(outside) + "/shadow", "not a plain path"},
		{"/etc/passwd", "not a plain path"},
		{"host/fifo", "a FIFO"},
		{"host/run", "a directory"},
		{"host/run/env.json/x", "not a directory"},
		{"host/none", "no such file"},
	}
	for _, tt := range tests {
		b, err := ReadFileIn(dir, tt.rel, 1<<10)
		if tt.wantErr == "" {
			if err != nil || string(b) != "{}" {
				t.Errorf("ReadFileIn(%s) = %q, %v; want {}", tt.rel, b, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ReadFileIn(%s) = %q, %v; want an error with %q", tt.rel, b, err, tt.wantErr)
			continue
		}
		if strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), dir) {
			t.Errorf("ReadFileIn(%s): %v: want the path named and nothing of a file's content", tt.rel, err)
		}
	}
	if IsRegularIn(dir, "host/inside.json") || !IsRegularIn(dir, "host/run/env.json") {
		t.Errorf("IsRegularIn disagrees with OpenIn")
	}
}
