// Package libvirtd talks to the libvirt daemon's QEMU driver
// (qemu:///system) for the libvirt driver and for virtbench clean: it
// connects over the daemon's socket with go-libvirt, names the daemon's
// processes by the socket's peer (never by matching process names), and
// tags and removes the domains virtbench defines.
package libvirtd

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"libvirt.org/go/libvirtxml"
)

// The sockets of a system libvirtd and of its log daemon, virtlogd.
const (
	Socket    = "/run/libvirt/libvirt-sock"
	LogSocket = "/run/libvirt/virtlogd-sock"
)

// DialTimeout bounds connecting to a daemon's socket.
const DialTimeout = 5 * time.Second

// Dial connects to the libvirtd serving socket and opens its QEMU driver.
// An error wrapping ErrNotRunning says that nothing serves the socket.
func Dial(socket string) (*libvirt.Libvirt, error) {
	conn, err := net.DialTimeout("unix", socket, DialTimeout)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotRunning, socket, err)
	}
	l := libvirt.NewWithDialer(dialers.NewAlreadyConnected(conn))
	if err := l.ConnectToURI(libvirt.QEMUSystem); err != nil {
		conn.Close()
		return nil, fmt.Errorf("libvirtd: connecting to %s: %w", libvirt.QEMUSystem, err)
	}
	return l, nil
}

// ErrNotRunning is wrapped by Dial's error when no daemon serves the socket.
var ErrNotRunning = errors.New("libvirtd is not running")

// Namespace is the XML namespace of the metadata element that tags a
// domain as virtbench's: <virtbench:instance dir="..."/>, where dir is the
// instance's directory in its run's state directory.
const Namespace = "urn:virtbench:instance"

// Tag returns the metadata element that tags a domain as the instance
// whose directory is dir.
func Tag(dir string) *libvirtxml.DomainMetadata {
	var b strings.Builder
	b.WriteString(`<virtbench:instance xmlns:virtbench="` + Namespace + `" dir="`)
	_ = xml.EscapeText(&b, []byte(dir)) // a Builder's writes do not fail
	b.WriteString(`"/>`)
	return &libvirtxml.DomainMetadata{XML: b.String()}
}

// TaggedDir returns the directory a domain's XML tags it with (Tag), or
// "" when it carries no virtbench tag.
func TaggedDir(domainXML string) string {
	var d libvirtxml.Domain
	if err := d.Unmarshal(domainXML); err != nil || d.Metadata == nil {
		return ""
	}
	var tag struct {
		XMLName xml.Name
		Dir     string `xml:"dir,attr"`
	}
	dec := xml.NewDecoder(strings.NewReader(d.Metadata.XML))
	for {
		err := dec.Decode(&tag)
		if err != nil {
			return ""
		}
		if tag.XMLName.Space == Namespace && tag.XMLName.Local == "instance" {
			return tag.Dir
		}
	}
}

// Remove destroys domain name (stops its QEMU at once) and undefines it,
// only when its metadata tags it as the instance of directory dir: a
// domain of the same name that is not that instance's is left alone. It
// reports whether it removed the domain; one that no longer exists is
// not an error.
func Remove(l *libvirt.Libvirt, name, dir string) (bool, error) {
	dom, err := l.DomainLookupByName(name)
	if err != nil {
		if libvirt.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("libvirtd: domain %s: %w", name, err)
	}
	desc, err := l.DomainGetXMLDesc(dom, 0)
	if err != nil {
		return false, fmt.Errorf("libvirtd: domain %s: %w", name, err)
	}
	if got := TaggedDir(desc); got != dir {
		return false, fmt.Errorf("libvirtd: domain %s is not virtbench's instance %s (its tag says %q): left alone", name, dir, got)
	}
	if state, _, err := l.DomainGetState(dom, 0); err == nil && libvirt.DomainState(state) != libvirt.DomainShutoff {
		if err := l.DomainDestroyFlags(dom, 0); err != nil && !libvirt.IsNotFound(err) {
			return false, fmt.Errorf("libvirtd: destroying domain %s: %w", name, err)
		}
	}
	if err := l.DomainUndefineFlags(dom, 0); err != nil && !libvirt.IsNotFound(err) {
		return false, fmt.Errorf("libvirtd: undefining domain %s: %w", name, err)
	}
	return true, nil
}
