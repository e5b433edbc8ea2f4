// Package netif configures network interfaces of the namespace or guest
// the agent runs in, with the classic interface ioctls (no netlink, to keep
// the static agent small).
package netif

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Up sets the interface name up.
func Up(name string) error {
	return withSocket(func(fd int) error {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return fmt.Errorf("netif: flags of %s: %w", name, err)
		}
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("netif: up %s: %w", name, err)
		}
		return nil
	})
}

// SetAddr gives the interface name the IPv4 address and netmask of p.
func SetAddr(name string, p netip.Prefix) error {
	if !p.Addr().Is4() {
		return fmt.Errorf("netif: %s is not an IPv4 address", p)
	}
	var m [4]byte
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return withSocket(func(fd int) error {
		for _, req := range []struct {
			op   uint
			addr [4]byte
		}{{unix.SIOCSIFADDR, p.Addr().As4()}, {unix.SIOCSIFNETMASK, m}} {
			ifr, err := unix.NewIfreq(name)
			if err != nil {
				return err
			}
			if err := ifr.SetInet4Addr(req.addr[:]); err != nil {
				return err
			}
			if err := unix.IoctlIfreq(fd, req.op, ifr); err != nil {
				return fmt.Errorf("netif: address %s on %s: %w", p, name, err)
			}
		}
		return nil
	})
}

func withSocket(f func(fd int) error) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netif: %w", err)
	}
	defer unix.Close(fd)
	return f(fd)
}
