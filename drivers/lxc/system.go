package lxc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"virtbench/drivers"
	"virtbench/drivers/internal/agentproc"
	"virtbench/guest"
	"virtbench/images"
)

// consoleName is where, in a system container's root, the agent's service
// writes its console: a FIFO of the instance's, bound there.
const consoleName = "virtbench-console"

// prepareSystem readies a system container's instance: a drop-in for the
// agent's service that runs the spec's workload (not the kernel command
// line's, which in a container is the host's) with its stdout on the
// instance's FIFO, and powers the container off when the agent ends, as a
// VM's guest does; and the FIFO, opened for reading and writing, so that
// it reaches EOF only when virtbench closes it.
func (i *instance) prepareSystem(spec drivers.Spec, nonce guest.Nonce) error {
	argv := append([]string{images.AgentPath, spec.Workload}, spec.Args...)
	for k, a := range argv {
		argv[k] = systemdQuote(a)
	}
	unit := fmt.Sprintf(`[Unit]
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
UnsetEnvironment=VIRTBENCH_SERVICE
Environment=%s %s %s
ExecStart=
ExecStart=%s
StandardInput=null
StandardOutput=file:/%s
StandardError=inherit
`, systemdQuote("PATH=/usr/bin:/bin:/sbin"), systemdQuote(guest.ListenEnv+"=:0"), systemdQuote(guest.NonceEnv+"="+string(nonce)), strings.Join(argv, " "), consoleName)
	dropIn := filepath.Join(i.dir, "upper/etc/systemd/system/virtbench.service.d")
	if err := os.MkdirAll(dropIn, 0o755); err != nil {
		return fmt.Errorf("lxc: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dropIn, "virtbench.conf"), []byte(unit), 0o644); err != nil {
		return fmt.Errorf("lxc: %w", err)
	}
	fifo := filepath.Join(i.dir, "console")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		return fmt.Errorf("lxc: console: %w", err)
	}
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("lxc: console: %w", err)
	}
	i.fifo = f
	i.undo.Push(f.Close)
	return nil
}

// systemConfig adds what a system container needs to boot systemd:
// systemd as init, the cgroup tree mounted, a halt signal systemd obeys,
// and the agent's console bound in.
func systemConfig(line func(key, value string), i *instance) {
	line("lxc.init.cmd", "/lib/systemd/systemd")
	line("lxc.mount.auto", "proc:mixed sys:mixed cgroup:mixed")
	line("lxc.signal.halt", "SIGRTMIN+3")
	line("lxc.tty.max", "0")
	line("lxc.mount.entry", filepath.Join(i.dir, "console")+" "+consoleName+" none bind,create=file 0 0")
}

// readConsole reads the agent's lines from the FIFO until lxc-start has
// exited and what the FIFO held is read.
func (i *instance) readConsole(begin time.Time, nonce guest.Nonce) {
	i.console = agentproc.NewConsole(begin, nonce)
	go i.console.Read(i.fifo)
	go func() {
		<-i.p.Exited()
		// The FIFO's buffer is read, then its reads end.
		i.fifo.SetReadDeadline(time.Now())
	}()
}

// systemdQuote quotes s as one word of a systemd unit's command line or
// environment assignment: in double quotes, with C escapes for what would
// end the word or the line, and systemd's specifiers and variables
// doubled.
func systemdQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range []byte(s) {
		switch {
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '%' || c == '$':
			b.WriteByte(c)
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
