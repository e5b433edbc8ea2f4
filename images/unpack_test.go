package images

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// entry is one tar entry of a test layer.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func layerTar(t *testing.T, es []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Size: int64(len(e.body)), Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// imageOf stacks the layers, lowest first, into an image.
func imageOf(t *testing.T, layers ...[]entry) v1.Image {
	t.Helper()
	img := empty.Image
	for _, es := range layers {
		b := layerTar(t, es)
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// unpackImage unpacks img's filesystem into dir/root, as UnpackService
// does.
func unpackImage(t *testing.T, dir string, img v1.Image, lim UnpackLimits) (string, error) {
	t.Helper()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return root, UnpackImage(img, root, lim)
}

// listTree returns every path under dir, relative to it.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// TestUnpackRefusesEscapes unpacks layers that try to write or link
// outside their root: each is refused with the entry named, or confined,
// and nothing appears beside the root nor is anything of the host linked
// in.
func TestUnpackRefusesEscapes(t *testing.T) {
	hostFile := "/etc/passwd"
	cases := []struct {
		name   string
		layers [][]entry
		// refused, when not "", is the entry the error must name.
		refused string
		check   func(t *testing.T, root string)
	}{
		{name: "dotdot entry", layers: [][]entry{{{name: "../escaped", body: "x"}}}, refused: "../escaped"},
		{name: "dotdot inside a path", layers: [][]entry{{{name: "a/../../escaped", body: "x"}}}, refused: "a/../../escaped"},
		{name: "absolute path is confined", layers: [][]entry{{{name: "/escaped-abs", body: "x"}}},
			check: func(t *testing.T, root string) {
				if b, err := os.ReadFile(filepath.Join(root, "escaped-abs")); err != nil || string(b) != "x" {
					t.Errorf("absolute entry not confined to the root: %v %q", err, b)
				}
			}},
		{name: "file through a symlink to a host directory", refused: "evil/escaped",
			layers: [][]entry{{{name: "evil", typ: tar.TypeSymlink, link: "OUTSIDE"}, {name: "evil/escaped", body: "x"}}}},
		{name: "file through a symlink of a lower layer", refused: "evil/escaped",
			layers: [][]entry{{{name: "evil", typ: tar.TypeSymlink, link: "OUTSIDE"}}, {{name: "evil/escaped", body: "x"}}}},
		{name: "hard link to a host file", refused: "passwd",
			layers: [][]entry{{{name: "passwd", typ: tar.TypeLink, link: hostFile}}}},
		{name: "hard link climbing out", refused: "passwd",
			layers: [][]entry{{{name: "passwd", typ: tar.TypeLink, link: "../../../../../../etc/passwd"}}}},
		{name: "hard link to the image's own copy", layers: [][]entry{{{name: "etc/passwd", body: "root:x:0:0::/:/bin/sh\n"}, {name: "passwd", typ: tar.TypeLink, link: "/etc/passwd"}}},
			check: func(t *testing.T, root string) {
				var img, host syscall.Stat_t
				if err := syscall.Stat(filepath.Join(root, "passwd"), &img); err != nil {
					t.Fatal(err)
				}
				if err := syscall.Stat(hostFile, &host); err != nil {
					t.Fatal(err)
				}
				if img.Ino == host.Ino && img.Dev == host.Dev {
					t.Error("the image's hard link is the host's /etc/passwd")
				}
			}},
		{name: "whiteout of a path outside", refused: "../.wh.victim",
			layers: [][]entry{{{name: "a", body: "x"}}, {{name: "../.wh.victim", body: ""}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			outside := filepath.Join(dir, "outside")
			if err := os.Mkdir(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			victim := filepath.Join(dir, "victim")
			if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, l := range tc.layers {
				for i := range l {
					l[i].link = strings.ReplaceAll(l[i].link, "OUTSIDE", outside)
				}
			}
			root, err := unpackImage(t, dir, imageOf(t, tc.layers...), DefaultUnpackLimits)
			switch {
			case tc.refused != "" && err == nil:
				t.Fatalf("unpacked; want %q refused", tc.refused)
			case tc.refused != "" && !strings.Contains(err.Error(), tc.refused):
				t.Fatalf("error %q does not name the entry %q", err, tc.refused)
			case tc.refused == "" && err != nil:
				t.Fatal(err)
			}
			if got := listTree(t, outside); len(got) > 0 {
				t.Errorf("written outside the root: %v", got)
			}
			if b, err := os.ReadFile(victim); err != nil || string(b) != "keep" {
				t.Errorf("a file beside the root changed: %v %q", err, b)
			}
			if _, err := os.Stat(filepath.Join(dir, "escaped")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("escaped entry beside the root: %v", err)
			}
			if _, err := os.Stat("/escaped-abs"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("absolute entry written to the host: %v", err)
			}
			if tc.check != nil {
				tc.check(t, root)
			}
		})
	}
}

// TestUnpackLayers checks what a well-formed image unpacks to: whiteouts
// and opaque directories applied, the upper layer's file winning, devices
// left out and setuid bits cleared.
func TestUnpackLayers(t *testing.T) {
	img := imageOf(t,
		[]entry{
			{name: "etc", typ: tar.TypeDir, mode: 0o755},
			{name: "etc/conf", body: "lower"},
			{name: "etc/gone", body: "lower"},
			{name: "var/cache/old", body: "lower"},
			{name: "bin/su", body: "elf", mode: 0o4755},
			{name: "dev/null", typ: tar.TypeChar},
		},
		[]entry{
			{name: "etc/conf", body: "upper"},
			{name: "etc/.wh.gone"},
			{name: "var/cache/.wh..wh..opq"},
			{name: "var/cache/new", body: "upper"},
		},
	)
	root, err := unpackImage(t, t.TempDir(), img, DefaultUnpackLimits)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(listTree(t, root), " ")
	want := "bin bin/su dev etc etc/conf var var/cache var/cache/new"
	if got != want {
		t.Errorf("unpacked %q, want %q", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/conf")); string(b) != "upper" {
		t.Errorf("etc/conf = %q, want the upper layer's", b)
	}
	fi, err := os.Stat(filepath.Join(root, "bin/su"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSetuid != 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/su mode %v, want 0755 without setuid", fi.Mode())
	}
}

// TestUnpackBounded refuses a layer bomb with the limit it passed.
func TestUnpackBounded(t *testing.T) {
	big := strings.Repeat("x", 4096)
	img := imageOf(t, []entry{{name: "a", body: big}, {name: "b", body: big}})
	_, err := unpackImage(t, t.TempDir(), img, UnpackLimits{Bytes: 6000, Entries: 100})
	if err == nil || !strings.Contains(err.Error(), "6000 bytes") {
		t.Errorf("bytes bound: %v", err)
	}
	_, err = unpackImage(t, t.TempDir(), img, UnpackLimits{Bytes: 1 << 20, Entries: 1})
	if err == nil || !strings.Contains(err.Error(), "more than 1 entries") {
		t.Errorf("entries bound: %v", err)
	}
}
