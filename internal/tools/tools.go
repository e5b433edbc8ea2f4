// Package tools declares the field's benchmark programs virtbench runs
// (fio, iperf3, Redis, nginx and their load generators): where the host's
// Debian packages install them, which package to install, and how an
// instance runs its copy from the tools layer (images.BuildTools).
//
// The layer holds each program with every shared library it loads under
// one prefix, and a program is started through the layer's own dynamic
// loader with the layer's library directory, so the same bytes run
// natively, in a container's root file system and on a VM's tools disk,
// whatever the instance's own /lib holds. It imports nothing of
// virtbench's: the static agent uses it too.
package tools

import (
	"fmt"
	"os"
	"path/filepath"
)

// Tool is one program of a Debian package.
type Tool struct {
	// Name is the program's file name, in the layer's bin directory too.
	Name string
	// Path is where the package installs it on the host.
	Path string
	// Package is the Debian package that holds it.
	Package string
}

// The tools. FIO, IPerf3, RedisServer and Nginx run inside instances;
// IPerf3, RedisBenchmark and Wrk drive load from the host.
var (
	FIO            = Tool{Name: "fio", Path: "/usr/bin/fio", Package: "fio"}
	IPerf3         = Tool{Name: "iperf3", Path: "/usr/bin/iperf3", Package: "iperf3"}
	RedisServer    = Tool{Name: "redis-server", Path: "/usr/bin/redis-server", Package: "redis-server"}
	RedisBenchmark = Tool{Name: "redis-benchmark", Path: "/usr/bin/redis-benchmark", Package: "redis-tools"}
	Nginx          = Tool{Name: "nginx", Path: "/usr/sbin/nginx", Package: "nginx-light"}
	Wrk            = Tool{Name: "wrk", Path: "/usr/bin/wrk", Package: "wrk"}
)

// InLayer are the tools the layer holds: those that run inside instances.
var InLayer = []Tool{FIO, IPerf3, RedisServer, Nginx}

// NginxFile is the URL path of the file the nginx workload serves and wrk
// requests.
const NginxFile = "/file"

// Check returns an error naming the package to install when the tool is
// not installed on the host.
func (t Tool) Check() error {
	if fi, err := os.Stat(t.Path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s (%s) is not installed: apt-get install %s", t.Name, t.Path, t.Package)
	}
	return nil
}

// Dir is where the tools layer's prefix appears inside an instance: the
// container's root file system holds it, a VM mounts its tools disk there.
const Dir = "/opt/virtbench-tools"

// DirEnv names the environment variable that gives the agent the layer's
// prefix where it is not Dir: natively, the layer's directory in the
// host's image cache.
const DirEnv = "VIRTBENCH_TOOLS"

// DiskLabel is the ext4 label of a VM's tools disk, by which the guest
// tells it from the instance's own disk.
const DiskLabel = "vbtools"

// Loader is the layer's dynamic loader, relative to the prefix.
const Loader = "lib/ld-linux-x86-64.so.2"

// Prefix returns the tools layer's prefix in this instance: $DirEnv, else Dir.
func Prefix() string {
	if p := os.Getenv(DirEnv); p != "" {
		return p
	}
	return Dir
}

// Command returns the command line that runs tool t from the layer at
// prefix with args: the layer's loader, its library directory, the
// program. It fails when the layer does not hold t.
func Command(prefix string, t Tool, args ...string) ([]string, error) {
	bin := filepath.Join(prefix, "bin", t.Name)
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("the tools layer at %s has no %s (is %s installed on the host? apt-get install %s)", prefix, t.Name, t.Path, t.Package)
	}
	return append([]string{filepath.Join(prefix, Loader), "--library-path", filepath.Join(prefix, "lib"), bin}, args...), nil
}
