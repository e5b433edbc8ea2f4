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
