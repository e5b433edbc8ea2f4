package guest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"virtbench/internal/measure"
	"virtbench/internal/tools"
)

// The workloads that run the field's tools (package tools) from the
// instance's tools layer. fio runs inside and reports its results; the
// servers (iperf3, Redis, nginx) report READY once they accept
// connections, and a load generator on the host measures them over the
// instance's network path (HostMeasures).
const (
	FIOWorkload    = "fio"
	IPerf3Workload = "iperf3"
	RedisWorkload  = "redis"
	NginxWorkload  = "nginx"
)

func init() {
	disk := func(name, unit string, better measure.Better) Measure {
		d := measure.DiskIOPS // and the random jobs' latencies
		if unit == "B/s" {
			d = measure.DiskBW
		}
		return Measure{Name: name, Unit: unit, Better: better, Dimension: d}
	}
	served := func(name, unit string, better measure.Better, d measure.Dimension) Measure {
		return Measure{Name: name, Unit: unit, Better: better, Dimension: d}
	}
	for _, w := range []Workload{
		{Name: FIOWorkload, Summary: "fio: 4 KiB random read and write (IOPS, completion latency p50/p99) and 1 MiB sequential read and write (B/s) on -dir, direct I/O, psync, one job at a time",
			Disk: true, HostPaths: []string{"dir"}, Tools: []tools.Tool{tools.FIO}, Flags: fioFlags,
			Measures: []Measure{
				disk("fio.randread_iops", "op/s", measure.HigherIsBetter), disk("fio.randread_p50", "sec", measure.LowerIsBetter), disk("fio.randread_p99", "sec", measure.LowerIsBetter),
				disk("fio.randwrite_iops", "op/s", measure.HigherIsBetter), disk("fio.randwrite_p50", "sec", measure.LowerIsBetter), disk("fio.randwrite_p99", "sec", measure.LowerIsBetter),
				disk("fio.read_bw", "B/s", measure.HigherIsBetter), disk("fio.write_bw", "B/s", measure.HigherIsBetter),
			},
			Demand: func(fs *flag.FlagSet) Demand { return Demand{DiskBytes: flagInt(fs, "size")} },
			Takes: func(fs *flag.FlagSet) time.Duration {
				d, _ := time.ParseDuration(fs.Lookup("runtime").Value.String())
				return time.Duration(len(fioJobs)) * max(d.Round(time.Second), time.Second)
			}},
		{Name: IPerf3Workload, Summary: "iperf3 server; iperf3 on the host sends to it and receives from it (-R), one stream each way: bit/s and retransmits",
			Server: true, Idle: true, Network: true, Tools: []tools.Tool{tools.IPerf3}, HostTools: []tools.Tool{tools.IPerf3}, Flags: iperf3Flags, Demand: NoDemand,
			HostMeasures: []Measure{
				served("iperf3.to_instance", "bit/s", measure.HigherIsBetter, measure.Network), served("iperf3.from_instance", "bit/s", measure.HigherIsBetter, measure.Network),
				served("iperf3.retransmits", "segments", measure.NoBetter, measure.NoDimension),
			}},
		{Name: RedisWorkload, Summary: "redis-server without persistence; redis-benchmark on the host runs GET and SET: requests/s and latency p50/p99",
			Server: true, Idle: true, Network: true, Tools: []tools.Tool{tools.RedisServer}, HostTools: []tools.Tool{tools.RedisBenchmark}, Flags: redisFlags, Demand: NoDemand,
			HostMeasures: []Measure{
				served("redis.get_rps", "op/s", measure.HigherIsBetter, measure.Server), served("redis.set_rps", "op/s", measure.HigherIsBetter, measure.Server),
				served("redis.get_p50", "sec", measure.LowerIsBetter, measure.NoDimension), served("redis.get_p99", "sec", measure.LowerIsBetter, measure.NoDimension),
			}},
		{Name: NginxWorkload, Summary: "nginx serving one -size byte file; wrk on the host: requests/s and latency p50/p99",
			Server: true, Idle: true, Network: true, Files: true, HTTPPath: tools.NginxFile, Tools: []tools.Tool{tools.Nginx}, HostTools: []tools.Tool{tools.Wrk}, Flags: nginxFlags,
			// The file it serves: on the instance's disk, and in the page
			// cache (or a tmpfs) as it is served.
			Demand: func(fs *flag.FlagSet) Demand { n := flagInt(fs, "size"); return Demand{MemoryBytes: n, DiskBytes: n} },
			HostMeasures: []Measure{
				served("nginx.rps", "op/s", measure.HigherIsBetter, measure.Server),
				served("nginx.p50", "sec", measure.LowerIsBetter, measure.NoDimension), served("nginx.p99", "sec", measure.LowerIsBetter, measure.NoDimension),
			}},
	} {
		registry[w.Name] = w
	}
}

// Generator returns the load generator the host drives a server
// workload with (its first host tool), if it has one.
func (w Workload) Generator() (tools.Tool, bool) {
	if len(w.HostTools) == 0 {
		return tools.Tool{}, false
	}
	return w.HostTools[0], true
}

// NeedsTools reports whether the named workload runs programs of the
// tools layer inside its instance: the drivers then give the instance the
// layer (images.BuildTools).
func NeedsTools(workload string) bool {
	w, ok := Lookup(workload)
	return ok && len(w.Tools) > 0
}

// toolCommand returns the command that runs t from the instance's tools
// layer with args, its output going to stdout (when not nil) and, the
// last 4 KiB of it, to the returned buffer for error messages.
func toolCommand(ctx context.Context, t tools.Tool, args ...string) (*exec.Cmd, *tail, error) {
	argv, err := tools.Command(tools.Prefix(), t, args...)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	errs := &tail{max: 4096}
	cmd.Stderr = errs
	cmd.WaitDelay = time.Second
	// The tool dies with the agent, even where the agent is not its
	// instance's last process (natively).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd, errs, nil
}

// tail keeps the last max bytes written to it.
type tail struct {
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string { return strings.TrimSpace(string(t.b)) }

// fioJobs are the fio workload's jobs, run one after another (stonewall).
var fioJobs = []struct{ name, rw, bs string }{
	{"randread", "randread", "4k"},
	{"randwrite", "randwrite", "4k"},
	{"read", "read", "1m"},
	{"write", "write", "1m"},
}

func fioFlags(fs *flag.FlagSet) func(context.Context, *Agent) error {
	size := positive(fs, "size", 64<<20, "bytes of the test file")
	dir := fs.String("dir", os.TempDir(), "directory for the test file")
	each := durationFlag(time.Second)
	fs.Var(&each, "runtime", "how long each of the four jobs runs (whole seconds, at least 1)")
	direct := fs.Bool("direct", true, "direct I/O (O_DIRECT), past the page cache; false measures through it")
	return func(ctx context.Context, a *Agent) error {
		if *direct {
			if err := checkDirect(*dir); err != nil {
				return err
			}
		}
		file := filepath.Join(*dir, fmt.Sprintf("virtbench-fio.%d", os.Getpid()))
		defer os.Remove(file)
		sec := max(1, int(time.Duration(each).Round(time.Second)/time.Second))
		args := []string{"--output-format=json", "--filename=" + file, "--size=" + strconv.FormatInt(*size, 10),
			"--ioengine=psync", "--iodepth=1", "--thread", "--time_based", "--runtime=" + strconv.Itoa(sec),
			"--direct=" + map[bool]string{true: "1", false: "0"}[*direct], "--randrepeat=0"}
		for _, j := range fioJobs {
			args = append(args, "--name="+j.name, "--rw="+j.rw, "--bs="+j.bs, "--stonewall")
		}
		cmd, errs, err := toolCommand(ctx, tools.FIO, args...)
		if err != nil {
			return fmt.Errorf("fio: %w", err)
		}
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("fio: %w: %s", err, errs)
		}
		res, err := ParseFIO(out)
		if err != nil {
			return err
		}
		for _, r := range res {
			if r.Unmeasured != "" {
				a.Unmeasured(r.Name, r.Unit, r.Unmeasured+" (the clocksource is "+clocksource()+")")
				continue
			}
			a.Result(r.Name, r.Value, r.Unit)
		}
		return nil
	}
}

// clocksource names the kernel's current clocksource, or "unknown".
func clocksource() string {
	b, err := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// checkDirect says why dir's file system refuses direct I/O, if it does.
func checkDirect(dir string) error {
	p := filepath.Join(dir, fmt.Sprintf(".virtbench-direct.%d", os.Getpid()))
	fd, err := unix.Open(p, unix.O_CREAT|unix.O_RDWR|unix.O_DIRECT, 0o600)
	if err != nil {
		os.Remove(p)
		return fmt.Errorf("fio: the file system of %s refuses direct I/O (%w); -direct=false measures through the page cache", dir, err)
	}
	unix.Close(fd)
	return os.Remove(p)
}

// Value is one named result with its unit (measure.Value).
type Value = measure.Value

// ParseFIO returns the fio workload's results from fio's JSON output: per
// job of fioJobs, IOPS (random) or bandwidth (sequential), and for the
// random jobs the completion latency's p50 and p99. A percentile of 0 is
// a clock too coarse for the I/O, not a latency: it is Unmeasured.
func ParseFIO(out []byte) ([]Value, error) {
	type io struct {
		IOPS float64 `json:"iops"`
		BW   float64 `json:"bw_bytes"`
		Clat struct {
			Percentile map[string]float64 `json:"percentile"`
		} `json:"clat_ns"`
	}
	var doc struct {
		Jobs []struct {
			Name  string `json:"jobname"`
			Error int    `json:"error"`
			Read  io     `json:"read"`
			Write io     `json:"write"`
		} `json:"jobs"`
	}
	// fio may print notes before its JSON document.
	if i := bytes.IndexByte(out, '{'); i > 0 {
		out = out[i:]
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("fio: its JSON output: %w", err)
	}
	var vs []Value
	for _, want := range fioJobs {
		found := false
		for _, j := range doc.Jobs {
			if j.Name != want.name {
				continue
			}
			found = true
			if j.Error != 0 {
				return nil, fmt.Errorf("fio: job %s failed with error %d (%s)", j.Name, j.Error, unix.ErrnoName(unix.Errno(j.Error)))
			}
			side := j.Read
			if strings.Contains(want.rw, "write") {
				side = j.Write
			}
			if side.IOPS == 0 {
				return nil, fmt.Errorf("fio: job %s did no I/O", j.Name)
			}
			if strings.HasPrefix(want.rw, "rand") {
				vs = append(vs, Value{Name: "fio." + j.Name + "_iops", Value: side.IOPS, Unit: "op/s"})
				for _, p := range []struct{ key, name string }{{"50.000000", "_p50"}, {"99.000000", "_p99"}} {
					ns, ok := side.Clat.Percentile[p.key]
					if !ok {
						return nil, fmt.Errorf("fio: job %s has no completion latency percentile %s", j.Name, p.key)
					}
					v := Value{Name: "fio." + j.Name + p.name, Value: ns / 1e9, Unit: "sec"}
					if ns <= 0 {
						v.Value, v.Unmeasured = 0, "fio timed its completions as 0 ns: its clock counts in steps coarser than the I/O"
					}
					vs = append(vs, v)
				}
			} else {
				vs = append(vs, Value{Name: "fio." + j.Name + "_bw", Value: side.BW, Unit: "B/s"})
			}
		}
		if !found {
			return nil, fmt.Errorf("fio: its output has no job %s", want.name)
		}
	}
	return vs, nil
}

// serveTool starts a server from the tools layer on a free port of the
// instance's listen address (ListenEnv): args returns its arguments for a
// bind address ("" for every one), the port and a private directory.
// Once the server accepts connections it reports READY with the address;
// it runs until ctx ends, and a server that exits first is an error.
func serveTool(ctx context.Context, a *Agent, workload string, t tools.Tool, args func(bind, port, dir string) []string) error {
	def := os.Getenv(ListenEnv)
	if def == "" {
		def = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(def)
	if err != nil {
		return fmt.Errorf("%s: listen address %q: %w", workload, def, err)
	}
	port, err := freePort(host)
	if err != nil {
		return fmt.Errorf("%s: %w", workload, err)
	}
	dir, err := os.MkdirTemp("", "virtbench-"+workload+"-")
	if err != nil {
		return fmt.Errorf("%s: %w", workload, err)
	}
	defer os.RemoveAll(dir)
	cmd, errs, err := toolCommand(ctx, t, args(host, port, dir)...)
	if err != nil {
		return fmt.Errorf("%s: %w", workload, err)
	}
	cmd.Stdout = errs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", workload, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Readiness is read from the kernel's socket table, not by connecting:
	// iperf3 takes any connection for a client's and resets after it.
	for !listening(port) {
		select {
		case err := <-exited:
			return fmt.Errorf("%s: %s exited before it accepted connections: %v: %s", workload, t.Name, err, errs)
		case <-ctx.Done():
			<-exited
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
	a.Ready(Ready{Workload: workload, Addr: net.JoinHostPort(host, port)})
	select {
	case err := <-exited:
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("%s: %s exited: %v: %s", workload, t.Name, err, errs)
	case <-ctx.Done():
		<-exited
		return nil
	}
}

// listening reports whether a TCP socket of this network namespace listens
// on port, from /proc/net/tcp and tcp6 (local address HEX:PORT, state 0A).
func listening(port string) bool {
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return false
	}
	want := fmt.Sprintf(":%04X", p)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			fs := strings.Fields(line)
			if len(fs) > 3 && strings.HasSuffix(fs[1], want) && fs[3] == "0A" {
				return true
			}
		}
	}
	return false
}

// freePort returns a TCP port on host that is free now.
func freePort(host string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

func iperf3Flags(*flag.FlagSet) func(context.Context, *Agent) error {
	return func(ctx context.Context, a *Agent) error {
		return serveTool(ctx, a, IPerf3Workload, tools.IPerf3, func(bind, port, _ string) []string {
			args := []string{"--server", "--port", port}
			if bind != "" {
				args = append(args, "--bind", bind)
			}
			return args
		})
	}
}

func redisFlags(*flag.FlagSet) func(context.Context, *Agent) error {
	return func(ctx context.Context, a *Agent) error {
		return serveTool(ctx, a, RedisWorkload, tools.RedisServer, func(bind, port, dir string) []string {
			if bind == "" {
				bind = "0.0.0.0"
			}
			return []string{"--port", port, "--bind", bind, "--save", "", "--appendonly", "no", "--protected-mode", "no",
				"--daemonize", "no", "--dir", dir, "--logfile", "", "--loglevel", "warning"}
		})
	}
}

func nginxFlags(fs *flag.FlagSet) func(context.Context, *Agent) error {
	size := positive(fs, "size", 4096, "bytes of the file served")
	return func(ctx context.Context, a *Agent) error {
		return serveTool(ctx, a, NginxWorkload, tools.Nginx, func(bind, port, dir string) []string {
			// Errors here show as nginx failing to start, with its own
			// message. The file is written a block at a time: the agent
			// holds none of it.
			_ = writeFilled(filepath.Join(dir, strings.TrimPrefix(tools.NginxFile, "/")), *size)
			_ = os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(nginxConf(bind, port, dir)), 0o644)
			return []string{"-e", "stderr", "-p", dir, "-c", filepath.Join(dir, "nginx.conf")}
		})
	}
}

// writeFilled writes a file of size bytes of 'v', a block at a time.
func writeFilled(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	block := bytes.Repeat([]byte("v"), 64<<10)
	for left := size; left > 0 && err == nil; left -= int64(len(block)) {
		_, err = f.Write(block[:min(left, int64(len(block)))])
	}
	return errors.Join(err, f.Close())
}

// nginxConf is a single-process nginx serving dir on bind:port, with every
// path it writes in dir.
func nginxConf(bind, port, dir string) string {
	listen := port
	if bind != "" {
		listen = net.JoinHostPort(bind, port)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "daemon off;\nmaster_process off;\nworker_processes 1;\npid %s/nginx.pid;\nlock_file %s/nginx.lock;\nerror_log stderr error;\n", dir, dir)
	b.WriteString("events { worker_connections 1024; }\nhttp {\n  access_log off;\n  default_type application/octet-stream;\n")
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&b, "  %s_temp_path %s/%s_temp;\n", t, dir, t)
	}
	fmt.Fprintf(&b, "  server {\n    listen %s;\n    root %s;\n    location = %s { }\n  }\n}\n", listen, dir, tools.NginxFile)
	return b.String()
}
