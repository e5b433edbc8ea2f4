// Package vnet gives an instance a virtual network path to a peer that
// virtbench creates: a veth pair between a container's network namespace
// and a peer network namespace, or a tap device in the peer namespace
// behind a VM's NIC, on private addresses that exist only there. Traffic between the peer and the instance crosses
// the instance's virtual network device and never a real network.
package vnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"virtbench/drivers"
)

// Peer is a network namespace virtbench creates to talk to instances from.
// It lives as long as the process holds it (an open namespace handle).
type Peer struct {
	ns netns.NsHandle

	mu   sync.Mutex
	next int // the next /30 to hand out
}

// NewPeer creates the peer namespace with its loopback up.
func NewPeer() (*Peer, error) {
	var p *Peer
	err := inThread(func(orig netns.NsHandle) error {
		ns, err := netns.New() // switches this thread into the new namespace
		if err != nil {
			return fmt.Errorf("vnet: new namespace: %w", err)
		}
		if lo, err := netlink.LinkByName("lo"); err == nil {
			netlink.LinkSetUp(lo)
		}
		p = &Peer{ns: ns}
		return nil
	})
	return p, err
}

// inThread runs f on a locked OS thread and returns the thread to the
// original network namespace afterwards. If that fails the thread is left
// locked, so Go discards it rather than reuse it in the wrong namespace.
func inThread(f func(orig netns.NsHandle) error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("vnet: %w", err)
	}
	defer orig.Close()
	ferr := f(orig)
	if err := netns.Set(orig); err != nil {
		return fmt.Errorf("vnet: back to the original namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// Link is the veth pair of one instance.
type Link struct {
	// PeerAddr and InstanceAddr are the two ends' addresses (a /30 in
	// 10.213.0.0/16, private to the two namespaces).
	PeerAddr, InstanceAddr netip.Addr
}

// Connect creates a veth pair with one end in the namespace of process pid
// (named name there) and the other in the peer, both up with addresses.
// The pair disappears with the instance's namespace.
func (p *Peer) Connect(pid int, name string) (Link, error) {
	ins, err := netns.GetFromPid(pid)
	if err != nil {
		return Link{}, fmt.Errorf("vnet: namespace of %d: %w", pid, err)
	}
	defer ins.Close()
	return p.connect(ins, name)
}

// Namespace creates a network namespace with loopback up, connected to the
// peer like Connect does, for a runtime that joins a namespace by path
// (NsPath). It lives while the returned file is open or a process is in it.
func (p *Peer) Namespace(name string) (*os.File, Link, error) {
	var ns netns.NsHandle
	err := inThread(func(netns.NsHandle) error {
		var err error
		ns, err = netns.New() // switches this thread into the new namespace
		if err != nil {
			return fmt.Errorf("vnet: new namespace: %w", err)
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("vnet: lo: %w", err)
		}
		return netlink.LinkSetUp(lo)
	})
	if err != nil {
		if ns.IsOpen() {
			ns.Close()
		}
		return nil, Link{}, err
	}
	f := os.NewFile(uintptr(ns), "netns")
	l, err := p.connect(ns, name)
	if err != nil {
		f.Close()
		return nil, Link{}, err
	}
	return f, l, nil
}

// NsPath returns a path by which other processes can open the namespace
// file f for as long as this process holds it open.
func NsPath(f *os.File) string { return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd()) }

// connect creates a veth pair with one end in the namespace ins.
func (p *Peer) connect(ins netns.NsHandle, name string) (Link, error) {
	n, l, err := p.alloc()
	if err != nil {
		return Link{}, err
	}
	peerName := fmt.Sprintf("vb%d", n)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: peerName, Namespace: netlink.NsFd(p.ns)}, PeerName: name, PeerNamespace: netlink.NsFd(int(ins))}
	// Created from the peer namespace: no device ever appears on the host.
	err = inThread(func(netns.NsHandle) error {
		if err := netns.Set(p.ns); err != nil {
			return err
		}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("vnet: veth: %w", err)
		}
		return configure(peerName, l.PeerAddr)
	})
	if err != nil {
		return Link{}, err
	}
	err = inThread(func(netns.NsHandle) error {
		if err := netns.Set(ins); err != nil {
			return err
		}
		return configure(name, l.InstanceAddr)
	})
	return l, err
}

// alloc hands out the next /30: its number and the two addresses.
func (p *Peer) alloc() (int, Link, error) {
	p.mu.Lock()
	n := p.next
	p.next++
	p.mu.Unlock()
	if n >= 1<<14 {
		return 0, Link{}, fmt.Errorf("vnet: out of addresses after %d instances", n)
	}
	base := [4]byte{10, 213, byte(n >> 6), byte(n&63) << 2}
	return n, Link{
		PeerAddr:     netip.AddrFrom4([4]byte{base[0], base[1], base[2], base[3] + 1}),
		InstanceAddr: netip.AddrFrom4([4]byte{base[0], base[1], base[2], base[3] + 2}),
	}, nil
}

// Tap creates a tap device in the peer namespace, up with the peer's
// address, for a VM whose NIC takes the other one (Link.InstanceAddr, to
// be configured inside the guest). The device carries virtio-net headers
// (IFF_VNET_HDR) and no packet information. It exists only while a
// descriptor of the returned file is open: hand it to the VMM, then close
// it here.
func (p *Peer) Tap() (*os.File, Link, error) {
	n, l, err := p.alloc()
	if err != nil {
		return nil, Link{}, err
	}
	tap := &netlink.Tuntap{
		LinkAttrs:  netlink.LinkAttrs{Name: fmt.Sprintf("vbt%d", n)},
		Mode:       netlink.TUNTAP_MODE_TAP,
		Flags:      netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR | netlink.TUNTAP_ONE_QUEUE,
		Queues:     1,
		NonPersist: true,
	}
	// Opened from the peer namespace, the device is created there.
	err = inThread(func(netns.NsHandle) error {
		if err := netns.Set(p.ns); err != nil {
			return err
		}
		if err := netlink.LinkAdd(tap); err != nil {
			return fmt.Errorf("vnet: tap: %w", err)
		}
		return configure(tap.Name, l.PeerAddr)
	})
	if err != nil {
		for _, f := range tap.Fds {
			f.Close()
		}
		return nil, Link{}, err
	}
	return tap.Fds[0], l, nil
}

// configure gives the named link in the current namespace addr/30 and
// sets it up.
func configure(name string, addr netip.Addr) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("vnet: %s: %w", name, err)
	}
	a, err := netlink.ParseAddr(addr.String() + "/30")
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(link, a); err != nil {
		return fmt.Errorf("vnet: address %s: %w", a, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("vnet: up %s: %w", name, err)
	}
	return nil
}

// in runs f on a locked thread in the peer namespace (see inThread).
func (p *Peer) in(f func() error) error {
	return inThread(func(netns.NsHandle) error {
		if err := netns.Set(p.ns); err != nil {
			return err
		}
		return f()
	})
}

// Dial opens a TCP connection from the peer namespace.
func (p *Peer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var c net.Conn
	err := p.in(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// LazyPeer makes its Peer on first use and keeps it: a driver holds one
// for all its instances.
type LazyPeer struct {
	once sync.Once
	p    *Peer
	err  error
}

// Get returns the peer, making it the first time.
func (l *LazyPeer) Get() (*Peer, error) {
	l.once.Do(func() { l.p, l.err = NewPeer() })
	return l.p, l.err
}

// PathTo gives the network namespace of process pid (a running
// container's init) an eth0 on a veth pair to the peer, made on first
// use, and returns the path over it.
func (l *LazyPeer) PathTo(pid int) (Path, error) {
	peer, err := l.Get()
	if err != nil {
		return Path{}, err
	}
	link, err := peer.Connect(pid, "eth0")
	if err != nil {
		return Path{}, err
	}
	return Path{Peer: peer, Link: link}, nil
}

// Path is an instance's network path from a peer; the zero Path is none.
type Path struct {
	Peer *Peer
	Link Link
}

// Dial connects from the peer to the instance's TCP port; without a path
// it returns drivers.ErrNotApplicable.
func (p Path) Dial(ctx context.Context, port string) (net.Conn, error) {
	if p.Peer == nil {
		return nil, drivers.ErrNotApplicable
	}
	return p.Peer.Dial(ctx, net.JoinHostPort(p.Link.InstanceAddr.String(), port))
}

// PeerAddr returns the instance's address for port as the peer sees it;
// without a path it returns drivers.ErrNotApplicable.
func (p Path) PeerAddr(port string) (string, error) {
	if p.Peer == nil {
		return "", drivers.ErrNotApplicable
	}
	return net.JoinHostPort(p.Link.InstanceAddr.String(), port), nil
}

// StartAtPeer starts cmd in the peer namespace: it is forked from a thread
// that has entered the namespace, and the child keeps it. Without a path
// it returns drivers.ErrNotApplicable.
func (p Path) StartAtPeer(cmd *exec.Cmd) error {
	if p.Peer == nil {
		return drivers.ErrNotApplicable
	}
	return p.Peer.in(cmd.Start)
}

// Close releases the peer namespace; it goes once its last veth does.
func (p *Peer) Close() error { return p.ns.Close() }
