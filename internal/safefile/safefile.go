// Package safefile opens the files virtbench reads from its user (a
// scenario, a run directory's records) so that a path to something other
// than a regular file cannot hang or exhaust it: a FIFO would block
// open(2) for ever, /dev/zero would be read without end. What it reads
// from a directory another machine filled (a run directory a campaign
// fetched back) it opens with OpenIn, which follows no link at all, so
// that a planted link cannot make it read a file of the host.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNotRegular reports a path that names something other than a regular
// file (a FIFO, a device, a directory, a socket).
var ErrNotRegular = errors.New("not a regular file")

// ErrLink reports a path inside a directory that passes through a
// symbolic link (OpenIn follows none).
var ErrLink = errors.New("a symbolic link (links are not followed in a run directory)")

// Open opens path for reading when it is a regular file (a symbolic link
// to one is followed). It checks before opening, so that a FIFO is never
// opened, and after, on the open descriptor, so that a file swapped in
// between is refused too; the open itself does not block.
func Open(path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, notRegular(path, fi.Mode())
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return checkRegular(f, path)
}

// OpenIn opens the regular file rel inside dir for reading, following no
// symbolic link on the way (the components of rel are opened one by one
// with O_NOFOLLOW, each from the directory before it) and refusing
// anything but a regular file at the end (see Open). rel is a relative,
// clean path; "..", "." and empty components are refused. dir itself is
// the caller's and may be reached through a link. Errors name the path,
// never what the file holds.
func OpenIn(dir, rel string) (*os.File, error) {
	path := filepath.Join(dir, rel)
	parts := strings.Split(rel, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return nil, &fs.PathError{Op: "open", Path: dir + "/" + rel, Err: errors.New("not a plain path inside the directory")}
		}
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	for i, p := range parts {
		flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i < len(parts)-1 {
			flags |= unix.O_DIRECTORY
		} else {
			// A FIFO opened without O_NONBLOCK would block; it is
			// refused below, once open.
			flags |= unix.O_NONBLOCK
		}
		next, err := unix.Openat(fd, p, flags, 0)
		unix.Close(fd)
		if err != nil {
			at := filepath.Join(dir, filepath.Join(parts[:i+1]...))
			switch {
			case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR) && isLink(at):
				return nil, &fs.PathError{Op: "open", Path: at, Err: ErrLink}
			case errors.Is(err, unix.ENOTDIR):
				return nil, &fs.PathError{Op: "open", Path: at, Err: errors.New("not a directory")}
			}
			return nil, &fs.PathError{Op: "open", Path: at, Err: err}
		}
		fd = next
	}
	return checkRegular(os.NewFile(uintptr(fd), path), path)
}

// isLink reports whether path itself is a symbolic link.
func isLink(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}

// checkRegular returns f when the open file is a regular one, else closes
// it and says what it is.
func checkRegular(f *os.File, path string) (*os.File, error) {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err != nil {
			return nil, err
		}
		return nil, notRegular(path, fi.Mode())
	}
	return f, nil
}

// IsRegularIn reports whether rel inside dir is a regular file reached
// through no symbolic link (OpenIn would open it).
func IsRegularIn(dir, rel string) bool {
	f, err := OpenIn(dir, rel)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

func notRegular(path string, m fs.FileMode) error {
	kind := "a " + m.Type().String()
	switch {
	case m.IsDir():
		kind = "a directory"
	case m&fs.ModeNamedPipe != 0:
		kind = "a FIFO"
	case m&fs.ModeDevice != 0:
		kind = "a device"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	}
	return &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: %s", ErrNotRegular, kind)}
}

// ReadFile reads a regular file (see Open) of at most limit bytes: it
// reads at most limit+1, and a longer file is an error that says so.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	return readLimited(f, path, limit)
}

// ReadFileIn reads the regular file rel inside dir (see OpenIn) of at
// most limit bytes.
func ReadFileIn(dir, rel string, limit int64) ([]byte, error) {
	f, err := OpenIn(dir, rel)
	if err != nil {
		return nil, err
	}
	return readLimited(f, filepath.Join(dir, rel), limit)
}

func readLimited(f *os.File, path string, limit int64) ([]byte, error) {
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if int64(len(b)) > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("larger than %d bytes", limit)}
	}
	return b, nil
}
