// Package runarchive unpacks the archive of a run directory that a
// campaign fetched back from one of its hosts. The host may be
// compromised or broken, so the archive is untrusted: only directories
// and regular files come out of it, with modes masked (no setuid, no
// execute, no write for others), owned by whoever unpacks it, nowhere
// but beneath the directory given, and no more bytes or files than
// Limits allow. Anything else refuses the archive, naming the entry, and
// leaves nothing of it behind.
package runarchive

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Limits bound what one archive may unpack to.
type Limits struct {
	// Bytes bounds the regular files' bytes together.
	Bytes int64
	// Files bounds the entries (files and directories).
	Files int
}

// DefaultLimits are generous for a run directory (a density run's is
// some hundreds of MiB) and small beside a controller's disk.
var DefaultLimits = Limits{Bytes: 2 << 30, Files: 100000}

// maxDepth bounds how deep an entry may lie: a run directory is two
// levels deep at most.
const maxDepth = 8

// File and directory modes of what is unpacked: readable, never
// executable, setuid or writable by others.
const (
	fileMode = 0o644
	dirMode  = 0o755
)

// Unpack reads the gzip-compressed tar archive r into dir, which must
// exist. Every entry must lie in top (a directory name: the archive is of
// one directory, "run"), which must not exist in dir yet. It refuses the
// whole archive at the first entry that is not a directory or a regular
// file (a link, a device, a FIFO), whose name is not a plain relative path
// in top (absolute, through "..", too deep), that exists already, or that
// takes the archive past lim; what it had written is then removed.
func Unpack(r io.Reader, dir, top string, lim Limits) (err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("runarchive: %w", err)
	}
	defer root.Close()
	var made []string // what was created, to remove on failure
	defer func() {
		if err != nil {
			for i := len(made) - 1; i >= 0; i-- {
				root.Remove(made[i])
			}
		}
	}()
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("runarchive: not a gzip archive: %w", err)
	}
	tr := tar.NewReader(gz)
	var total int64
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("runarchive: entry %d: %w", n+1, err)
		}
		if n >= lim.Files {
			return fmt.Errorf("runarchive: more than %d entries: refused (the limit)", lim.Files)
		}
		name, err := entryName(h.Name)
		if err != nil {
			return err
		}
		if name != top && !strings.HasPrefix(name, top+"/") {
			return fmt.Errorf("runarchive: %q: outside %s/, the directory the archive is of: refused", h.Name, top)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.Mkdir(name, dirMode); err != nil {
				return fmt.Errorf("runarchive: %s: %w", name, err)
			}
			made = append(made, name)
		case tar.TypeReg:
			if h.Size < 0 || total+h.Size > lim.Bytes {
				return fmt.Errorf("runarchive: %s: the archive unpacks to more than %d bytes: refused (the limit)", name, lim.Bytes)
			}
			f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fileMode)
			if err != nil {
				return fmt.Errorf("runarchive: %s: %w", name, err)
			}
			made = append(made, name)
			written, err := io.Copy(f, io.LimitReader(tr, h.Size))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("runarchive: %s: %w", name, err)
			}
			total += written
		default:
			return fmt.Errorf("runarchive: %s: %s: refused (a run directory holds only directories and regular files)", name, typeName(h.Typeflag))
		}
	}
}

// entryName returns an entry's name as a clean relative path, or why it
// is refused.
func entryName(name string) (string, error) {
	clean := path.Clean(strings.TrimSuffix(name, "/"))
	switch {
	case name == "" || strings.ContainsRune(name, 0):
		return "", fmt.Errorf("runarchive: an entry without a name: refused")
	case path.IsAbs(name):
		return "", fmt.Errorf("runarchive: %q: an absolute path: refused", name)
	case clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains("/"+name+"/", "/../"):
		return "", fmt.Errorf("runarchive: %q: a path through \"..\": refused", name)
	case clean == ".":
		return "", fmt.Errorf("runarchive: %q: the archive's root itself: refused", name)
	case strings.Count(clean, "/") >= maxDepth:
		return "", fmt.Errorf("runarchive: %q: deeper than %d levels: refused", name, maxDepth)
	}
	return clean, nil
}

// typeName says what kind of entry a tar type flag is.
func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "a symbolic link"
	case tar.TypeLink:
		return "a hard link"
	case tar.TypeChar:
		return "a character device"
	case tar.TypeBlock:
		return "a block device"
	case tar.TypeFifo:
		return "a FIFO"
	}
	return fmt.Sprintf("an entry of type %q", t)
}

// UnpackFile unpacks the archive file into dir (see Unpack), refusing an
// archive file larger than lim.Bytes before reading it.
func UnpackFile(archive, dir, top string, lim Limits) error {
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("runarchive: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("runarchive: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return &fs.PathError{Op: "unpack", Path: archive, Err: errors.New("not a regular file")}
	}
	if fi.Size() > lim.Bytes {
		return fmt.Errorf("runarchive: %s is %d bytes, more than the %d it may unpack to: refused (the limit)", archive, fi.Size(), lim.Bytes)
	}
	return Unpack(f, dir, top, lim)
}
