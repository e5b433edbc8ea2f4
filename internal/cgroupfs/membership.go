// Package cgroupfs reads what the kernel says of a process's cgroups.
package cgroupfs

import (
	"bufio"
	"io"
	"strings"
)

// Membership parses /proc/PID/cgroup: the cgroup path of each v1
// controller (each name of a co-mounted hierarchy, "cpu" and "cpuacct" of
// "cpu,cpuacct", gets the hierarchy's path) and, under "", the unified (v2)
// one.
func Membership(r io.Reader) (map[string]string, error) {
	m := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			m[c] = parts[2]
		}
	}
	return m, sc.Err()
}
