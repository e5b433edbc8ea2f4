package guest

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ServiceWorkload is the agent's workload for a user's service: it makes
// the service's environment (its root, working directory and user), says
// READY, and replaces itself with the service's command (execve), so that
// the instance is the service alone. Whether the service is ready is for
// the host to probe from outside; the agent's READY ends the phase
// "agent".
const ServiceWorkload = "service"

// stringsFlag is a flag that may be given many times.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func serviceFlags(fs *flag.FlagSet) func(context.Context, *Agent) error {
	port := fs.Int("port", 0, "the TCP port the service listens on (0: none), reported as READY's address")
	var env stringsFlag
	fs.Var(&env, "env", "KEY=VALUE of the service's environment (repeated); the service gets no other")
	dir := fs.String("dir", "/", "the service's working directory")
	user := fs.String("user", "", "USER[:GROUP], names or numbers of the root's /etc/passwd and /etc/group (default root)")
	root := fs.String("root", "", "chroot into this directory first (natively: the image's unpacked root)")
	keep := fs.Bool("keep", false, "stay as the service's parent instead of becoming it (PID 1 of a VM, whose exit would stop the kernel)")
	return func(ctx context.Context, a *Agent) error {
		args := fs.Args()
		if len(args) == 0 {
			return errors.New("service: no command")
		}
		if *keep {
			return superviseService(ctx, a, args, env, *root, *dir, *user, *port)
		}
		if *root != "" {
			if err := syscall.Chroot(*root); err != nil {
				return fmt.Errorf("service: chroot %s: %w", *root, err)
			}
		}
		if err := os.Chdir(*dir); err != nil {
			return fmt.Errorf("service: working directory: %w", err)
		}
		bin, err := lookPath("/", args[0], env)
		if err != nil {
			return fmt.Errorf("service: %w", err)
		}
		if *user != "" {
			if err := becomeUser(*user); err != nil {
				return fmt.Errorf("service: user %s: %w", *user, err)
			}
		}
		a.Ready(serviceReady(*port))
		return fmt.Errorf("service: exec %s: %w", bin, syscall.Exec(bin, args, env))
	}
}

// superviseService runs the service as a child in root and waits for it:
// until ctx ends (the VM is stopped), when it stops the child, or until
// the child exits, which is an error.
func superviseService(ctx context.Context, a *Agent, args, env []string, root, dir, user string, port int) error {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env, cmd.Dir = env, dir
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	bin, err := lookPath(root, args[0], env)
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	cmd.Path = bin // within root, as the child sees it
	if user != "" {
		uid, gid, err := userIDs(root, user)
		if err != nil {
			return fmt.Errorf("service: user %s: %w", user, err)
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{uint32(gid)}}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("service: start %s: %w", args[0], err)
	}
	a.Ready(serviceReady(port))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return fmt.Errorf("service: %s exited: %v", args[0], err)
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		return nil
	}
}

// DefaultPath is the PATH a service's command is looked up in when its
// environment has none (execvp(3)'s, with the sbin directories).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// serviceReady is the READY of a service listening on port (0: none).
func serviceReady(port int) Ready {
	r := Ready{Workload: ServiceWorkload}
	if port > 0 {
		r.Addr = ":" + strconv.Itoa(port)
	}
	return r
}

// lookPath finds cmd as execvp(3) would, in the PATH of env, within the
// directory root ("/": the process's own root), and returns its path as
// seen from root.
func lookPath(root, cmd string, env []string) (string, error) {
	if strings.Contains(cmd, "/") {
		return cmd, executable(filepath.Join(root, cmd))
	}
	path := DefaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, d := range filepath.SplitList(path) {
		if p := filepath.Join(d, cmd); executable(filepath.Join(root, p)) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH %s of the image", cmd, path)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return fmt.Errorf("the image has no %s", p)
	case fi.IsDir() || fi.Mode()&0o111 == 0:
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// userIDs returns the user and group IDs of spec, USER or USER:GROUP,
// each a name or a number of the /etc/passwd and /etc/group under root.
func userIDs(root, spec string) (uid, gid int, err error) {
	u, g, hasGroup := strings.Cut(spec, ":")
	uid, gid, err = lookupID(filepath.Join(root, "/etc/passwd"), u, true)
	if err != nil {
		return 0, 0, err
	}
	if hasGroup {
		if gid, _, err = lookupID(filepath.Join(root, "/etc/group"), g, false); err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}

// becomeUser sets the process's groups, group and user to spec (userIDs
// in the process's root).
func becomeUser(spec string) error {
	uid, gid, err := userIDs("/", spec)
	if err != nil {
		return err
	}
	if err := syscall.Setgroups([]int{gid}); err != nil {
		return err
	}
	if err := syscall.Setgid(gid); err != nil {
		return err
	}
	return syscall.Setuid(uid)
}

// lookupID returns the ID of name (or number) in the colon-separated
// database file, and for /etc/passwd its primary group.
func lookupID(file, name string, passwd bool) (id, group int, err error) {
	n, numErr := strconv.Atoi(name)
	f, err := os.Open(file)
	if err != nil {
		if numErr == nil {
			return n, n, nil
		}
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 4 || (fields[0] != name && fields[2] != name) {
			continue
		}
		id, err = strconv.Atoi(fields[2])
		if err != nil {
			return 0, 0, fmt.Errorf("%s: bad ID %q", file, fields[2])
		}
		group = id
		if passwd {
			if group, err = strconv.Atoi(fields[3]); err != nil {
				return 0, 0, fmt.Errorf("%s: bad group %q", file, fields[3])
			}
		}
		return id, group, nil
	}
	if numErr == nil {
		return n, n, nil
	}
	return 0, 0, fmt.Errorf("%s is not in %s", name, file)
}
