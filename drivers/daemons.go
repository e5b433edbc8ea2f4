package drivers

import (
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// Daemoner is implemented by drivers whose instances are served by
// daemons that run once per host, whatever the number of instances
// (libvirtd and virtlogd): Daemons returns their host PIDs now, found
// through the daemons' own sockets (SocketPeer), never by their names.
// The runner reads their memory beside the instances' (a shared cost,
// held once), and the capacity model keeps it out of a host's budget.
type Daemoner interface {
	Daemons() ([]int32, error)
}

// SocketPeer returns the PID of the process that serves the Unix socket
// at path, as the kernel names a connection's peer.
func SocketPeer(path string) (int32, error) {
	conn, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return PeerPID(conn.(*net.UnixConn))
}

// PeerPID returns the PID of the process at the other end of conn
// (SO_PEERCRED: the process that connected, or that listens).
func PeerPID(conn *net.UnixConn) (int32, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if credErr != nil {
		return 0, fmt.Errorf("the peer of %s: %w", conn.LocalAddr(), credErr)
	}
	return cred.Pid, nil
}
