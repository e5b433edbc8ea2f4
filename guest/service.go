package guest

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	return func(_ context.Context, a *Agent) error {
		args := fs.Args()
		if len(args) == 0 {
			return errors.New("service: no command")
		}
		if *root != "" {
			if err := syscall.Chroot(*root); err != nil {
				return fmt.Errorf("service: chroot %s: %w", *root, err)
			}
		}
		if err := os.Chdir(*dir); err != nil {
			return fmt.Errorf("service: working directory: %w", err)
		}
		bin, err := lookPath(args[0], env)
		if err != nil {
			return fmt.Errorf("service: %w", err)
		}
		if *user != "" {
			if err := becomeUser(*user); err != nil {
				return fmt.Errorf("service: user %s: %w", *user, err)
			}
		}
		addr := ""
		if *port > 0 {
			addr = ":" + strconv.Itoa(*port)
		}
		a.Ready(Ready{Workload: ServiceWorkload, Addr: addr})
		return fmt.Errorf("service: exec %s: %w", bin, syscall.Exec(bin, args, env))
	}
}

// lookPath finds cmd as execvp(3) would, in the PATH of env.
func lookPath(cmd string, env []string) (string, error) {
	if strings.Contains(cmd, "/") {
		return cmd, executable(cmd)
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, d := range filepath.SplitList(path) {
		if p := filepath.Join(d, cmd); executable(p) == nil {
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

// becomeUser sets the process's groups, group and user to spec, USER or
// USER:GROUP, each a name or a number.
func becomeUser(spec string) error {
	u, g, hasGroup := strings.Cut(spec, ":")
	uid, gid, err := lookupID("/etc/passwd", u, true)
	if err != nil {
		return err
	}
	if hasGroup {
		if gid, _, err = lookupID("/etc/group", g, false); err != nil {
			return err
		}
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
