package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// UnpackLimits bound what Unpack writes, so that a layer bomb is refused
// rather than fill the disk.
type UnpackLimits struct {
	// Bytes bounds the sum of the regular files' sizes; Entries the number
	// of entries.
	Bytes   int64
	Entries int
}

// DefaultUnpackLimits are the bounds of an image's unpacked root.
var DefaultUnpackLimits = UnpackLimits{Bytes: 8 << 30, Entries: 1 << 20}

// UnsafeEntryError refuses an archive whose entry would be written, or
// linked, outside the root it is unpacked in.
type UnsafeEntryError struct {
	Entry string
	Why   string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("unsafe entry %q: %s", e.Entry, e.Why)
}

// Unpack applies the layers, lowest first, under root, an existing
// directory, as a rootless unpacker would and without ever leaving root:
//   - an entry's name is taken relative to root (a leading / is confined
//     to root, as Docker does); a name that climbs out through ".." is
//     refused;
//   - an entry whose parent is a symbolic link is refused (whatever the
//     link points at: writing through it could leave root), as is one
//     whose parent is not a directory;
//   - a hard link must name a regular file already in root, reached the
//     same way: nothing of the host is ever linked in;
//   - a whiteout (.wh.NAME) removes NAME of the layers below, an opaque
//     marker (.wh..wh..opq) what they left in its directory; the names
//     are resolved as entries' are;
//   - device nodes and FIFOs are left out; setuid, setgid and sticky
//     bits are cleared; owners are kept;
//   - an entry replaces what a lower layer left at its name, unless both
//     are directories.
//
// A refused entry is named in an *UnsafeEntryError. Exceeding lim, over
// all the layers, refuses the image.
func Unpack(layers []io.Reader, root string, lim UnpackLimits) error {
	u := unpacker{root: root, lim: lim}
	for i, r := range layers {
		if err := u.layer(r); err != nil {
			if len(layers) > 1 {
				return fmt.Errorf("layer %d: %w", i+1, err)
			}
			return err
		}
	}
	return u.fixDirTimes()
}

// The whiteout markers of the OCI image layout.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

func (u *unpacker) layer(r io.Reader) error {
	u.written = map[string]bool{}
	var opaque []string
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		u.entries++
		if u.entries > u.lim.Entries {
			return fmt.Errorf("the image holds more than %d entries, the limit", u.lim.Entries)
		}
		rel, err := clean(hdr.Name)
		if err != nil {
			return err
		}
		if rel == "" || rel == "." {
			continue // the root itself
		}
		dir, base := path.Split(rel)
		switch {
		case base == opaqueMarker:
			if _, err := u.parent(hdr.Name, rel); err != nil {
				return err
			}
			opaque = append(opaque, strings.TrimSuffix(dir, "/"))
		case strings.HasPrefix(base, whiteoutPrefix):
			gone := dir + strings.TrimPrefix(base, whiteoutPrefix)
			p, err := u.parent(hdr.Name, gone)
			if err != nil {
				return err
			}
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		default:
			if err := u.entry(hdr, rel, tr); err != nil {
				return err
			}
			u.written[rel] = true
		}
	}
	for _, d := range opaque {
		if err := u.clearOpaque(d); err != nil {
			return err
		}
	}
	return nil
}

// clearOpaque removes what lower layers left in the directory rel (""
// for the root): what this layer wrote there stays.
func (u *unpacker) clearOpaque(rel string) error {
	des, err := os.ReadDir(filepath.Join(u.root, rel))
	if err != nil {
		return nil // a marker in a directory no layer made
	}
	for _, de := range des {
		name := path.Join(rel, de.Name())
		if u.written[name] || u.wroteBelow(name) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(u.root, name)); err != nil {
			return err
		}
	}
	return nil
}

// wroteBelow reports whether the current layer wrote beneath rel.
func (u *unpacker) wroteBelow(rel string) bool {
	for w := range u.written {
		if strings.HasPrefix(w, rel+"/") {
			return true
		}
	}
	return false
}

type unpacker struct {
	root    string
	lim     UnpackLimits
	bytes   int64
	entries int
	// written are the names the current layer wrote.
	written map[string]bool
	dirs    []*tar.Header
}

// clean returns the entry's name relative to root, or an error when it
// climbs out.
func clean(name string) (string, error) {
	name = strings.ReplaceAll(name, "\\", "/")
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", &UnsafeEntryError{Entry: name, Why: "its path climbs out of the root through \"..\""}
		}
	}
	return strings.TrimPrefix(path.Clean("/"+name), "/"), nil
}

// parent makes sure every directory above rel exists under root as a real
// directory, making the missing ones, and returns rel's host path.
func (u *unpacker) parent(entry, rel string) (string, error) {
	dir := u.root
	parts := strings.Split(rel, "/")
	for i, p := range parts[:len(parts)-1] {
		dir = filepath.Join(dir, p)
		fi, err := os.Lstat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(dir, 0o755); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case fi.Mode()&fs.ModeSymlink != 0:
			return "", &UnsafeEntryError{Entry: entry, Why: fmt.Sprintf("its parent %s is a symbolic link, which could lead out of the root", strings.Join(parts[:i+1], "/"))}
		case !fi.IsDir():
			return "", &UnsafeEntryError{Entry: entry, Why: fmt.Sprintf("its parent %s is not a directory", strings.Join(parts[:i+1], "/"))}
		}
	}
	return filepath.Join(u.root, rel), nil
}

func (u *unpacker) entry(hdr *tar.Header, rel string, r io.Reader) error {
	dst, err := u.parent(hdr.Name, rel)
	if err != nil {
		return err
	}
	mode := os.FileMode(hdr.Mode) & os.ModePerm // no setuid, setgid or sticky bit
	if fi, err := os.Lstat(dst); err == nil {
		if fi.IsDir() && hdr.Typeflag == tar.TypeDir {
			u.dirs = append(u.dirs, hdr)
			return u.attrs(dst, hdr, mode)
		}
		if err := os.RemoveAll(dst); err != nil { // a lower layer's entry of this name
			return err
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(dst, mode); err != nil {
			return err
		}
		u.dirs = append(u.dirs, hdr)
	case tar.TypeReg:
		u.bytes += hdr.Size
		if u.bytes > u.lim.Bytes {
			return fmt.Errorf("the image is larger than %d bytes unpacked, the limit (at entry %q)", u.lim.Bytes, hdr.Name)
		}
		if err := writeFile(dst, r, hdr.Size, mode); err != nil {
			return err
		}
	case tar.TypeSymlink:
		return os.Symlink(hdr.Linkname, dst) // a link is never followed here
	case tar.TypeLink:
		return u.link(hdr, dst)
	default:
		return nil // devices, FIFOs and the like are left out
	}
	return u.attrs(dst, hdr, mode)
}

func writeFile(dst string, r io.Reader, size int64, mode os.FileMode) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, mode)
	if err != nil {
		return err
	}
	_, err = io.CopyN(f, r, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// attrs gives dst the entry's owner, mode and modification time.
func (u *unpacker) attrs(dst string, hdr *tar.Header, mode os.FileMode) error {
	if err := os.Lchown(dst, hdr.Uid, hdr.Gid); err != nil && os.Geteuid() == 0 {
		return err
	}
	if err := os.Chmod(dst, mode); err != nil {
		return err
	}
	return os.Chtimes(dst, time.Time{}, hdr.ModTime)
}

// link makes the hard link dst of the entry hdr, whose target must be a
// regular file already in root.
func (u *unpacker) link(hdr *tar.Header, dst string) error {
	target, err := clean(hdr.Linkname)
	if err != nil {
		return &UnsafeEntryError{Entry: hdr.Name, Why: "its hard link target " + hdr.Linkname + " climbs out of the root"}
	}
	src, err := u.parent(hdr.Name, target)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(src)
	if err != nil || !fi.Mode().IsRegular() {
		return &UnsafeEntryError{Entry: hdr.Name, Why: "its hard link target " + hdr.Linkname + " is not a regular file of the image"}
	}
	return os.Link(src, dst)
}

// fixDirTimes sets the directories' modification times once nothing more
// is written in them.
func (u *unpacker) fixDirTimes() error {
	for i := len(u.dirs) - 1; i >= 0; i-- {
		rel, _ := clean(u.dirs[i].Name)
		// A later layer may have removed it.
		if err := os.Chtimes(filepath.Join(u.root, rel), time.Time{}, u.dirs[i].ModTime); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// UnpackImage applies img's layers under root (Unpack).
func UnpackImage(img v1.Image, root string, lim UnpackLimits) error {
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("read layers: %w", err)
	}
	var rs []io.Reader
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return fmt.Errorf("read layer: %w", err)
		}
		defer rc.Close()
		rs = append(rs, rc)
	}
	return Unpack(rs, root, lim)
}
