package drivers

import (
	"errors"
	"fmt"
	"os/exec"
)

var (
	// ErrUnavailable reports a driver that cannot run on this host.
	ErrUnavailable = errors.New("drivers: unavailable")
	// ErrNotReady reports an instance that did not become ready in time.
	ErrNotReady = errors.New("drivers: not ready")
	// ErrExited reports an instance whose workload exited unexpectedly.
	ErrExited = errors.New("drivers: instance exited")
	// ErrNotApplicable reports an optional measurement that this instance
	// does not have (a VM booted without a disk has no writable layer).
	ErrNotApplicable = errors.New("drivers: not applicable")
)

// Unavailable returns an error wrapping ErrUnavailable with the reason.
func Unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}

// NeedBinary returns an error wrapping ErrUnavailable when binary is not
// on PATH, naming the Debian package that provides it; nil otherwise.
func NeedBinary(binary, pkg string) error {
	if _, err := exec.LookPath(binary); err != nil {
		return Unavailable("%s is not installed (apt-get install %s)", binary, pkg)
	}
	return nil
}
