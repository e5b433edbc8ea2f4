package runarchive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entry is one entry of a test archive.
type entry struct {
	name     string
	typ      byte
	mode     int64
	body     string
	size     int64 // the header's size where not len(body)
	linkname string
}

func archive(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.linkname, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if e.size > 0 {
			h.Size = e.size
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.size > 0 {
			// A bomb: the same byte, compressed to almost nothing.
			if _, err := tw.Write(make([]byte, e.size)); err != nil {
				t.Fatal(err)
			}
		} else if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var runDir = entry{name: "run/", typ: tar.TypeDir, mode: 0o777}

// TestUnpack: a run directory comes out with modes masked; every hostile
// entry (the probes' setuid-root file, device, FIFO, world-writable
// directory and links to /etc/shadow, and paths out of the directory)
// refuses the archive naming the entry, and nothing is left of it.
func TestUnpack(t *testing.T) {
	ok := []entry{runDir, {name: "run/samples.jsonl", typ: tar.TypeReg, mode: 0o4755, body: "{}\n"}, {name: "run/charts/", typ: tar.TypeDir, mode: 0o777},
		{name: "run/charts/a.svg", typ: tar.TypeReg, mode: 0o666, body: "<svg/>"}}
	tests := []struct {
		name    string
		entries []entry
		lim     Limits
		wantErr string
	}{
		{"a run directory", ok, DefaultLimits, ""},
		{"a symbolic link to /etc/shadow", append(ok, entry{name: "run/env.json", typ: tar.TypeSymlink, linkname: "/etc/shadow"}), DefaultLimits, `run/env.json: a symbolic link: refused`},
		{"a hard link to /etc/passwd", append(ok, entry{name: "run/p", typ: tar.TypeLink, linkname: "/etc/passwd"}), DefaultLimits, "run/p: a hard link"},
		{"a character device", append(ok, entry{name: "run/null", typ: tar.TypeChar, mode: 0o666}), DefaultLimits, "run/null: a character device"},
		{"a FIFO", append(ok, entry{name: "run/fifo", typ: tar.TypeFifo}), DefaultLimits, "run/fifo: a FIFO"},
		{"an entry through ..", append(ok, entry{name: "run/../../escape", typ: tar.TypeReg, body: "x"}), DefaultLimits, `"run/../../escape": a path through ".."`},
		{"an absolute path", append(ok, entry{name: "/etc/cron.d/x", typ: tar.TypeReg, body: "x"}), DefaultLimits, `"/etc/cron.d/x": an absolute path`},
		{"an entry outside run/", append(ok, entry{name: "host.json", typ: tar.TypeReg, body: `{"failed":""}`}), DefaultLimits, `"host.json": outside run/`},
		{"a file twice", append(ok, ok[1]), DefaultLimits, "run/samples.jsonl: open"},
		{"a file through a directory not made", []entry{runDir, {name: "run/x/y", typ: tar.TypeReg, body: "x"}}, DefaultLimits, "run/x/y"},
		{"a bomb", append(ok, entry{name: "run/big", typ: tar.TypeReg, size: 8 << 20}), Limits{Bytes: 1 << 20, Files: 10}, "more than 1048576 bytes: refused (the limit)"},
		{"too many files", ok, Limits{Bytes: 1 << 20, Files: 3}, "more than 3 entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "host")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			err := Unpack(bytes.NewReader(archive(t, tt.entries...)), dir, "run", tt.lim)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Unpack = %v, want %q", err, tt.wantErr)
				}
				if left, _ := os.ReadDir(dir); len(left) != 0 {
					t.Errorf("left %v behind", left)
				}
				if left, _ := os.ReadDir(parent); len(left) != 1 {
					t.Errorf("wrote beside the host's directory: %v", left)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range map[string]fs.FileMode{"run": fs.ModeDir | 0o755, "run/samples.jsonl": 0o644, "run/charts/a.svg": 0o644} {
				fi, err := os.Lstat(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode() &^ fs.FileMode(0o022); got != want&^0o022 || fi.Mode()&(fs.ModeSetuid|0o111) != 0 && !fi.IsDir() {
					t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
				}
			}
		})
	}
}

// TestUnpackFileLimit: an archive file larger than the limit is refused
// before it is read.
func TestUnpackFileLimit(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "run.tar.gz")
	if err := os.WriteFile(p, archive(t, runDir, entry{name: "run/x", typ: tar.TypeReg, body: strings.Repeat("x", 4096)}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := UnpackFile(p, dir, "run", Limits{Bytes: 10, Files: 10}); err == nil || !strings.Contains(err.Error(), "more than the 10 it may unpack to") {
		t.Errorf("UnpackFile = %v, want the limit named", err)
	}
	if err := UnpackFile(p, dir, "run", DefaultLimits); err != nil {
		t.Errorf("UnpackFile = %v", err)
	}
}
