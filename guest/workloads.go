package guest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"virtbench/internal/measure"
)

// IdleWorkload is the workload that does nothing once ready: what an
// instance costs a host by merely existing (memory, CPU, tasks) is read
// from its results, and the capacity model plans with them.
const IdleWorkload = "idle"

// registry holds every workload. It is written only here.
var registry = map[string]Workload{
	IdleWorkload: {Name: IdleWorkload, Summary: "ready at once, then wait until stopped", Idle: true, Flags: idleFlags, Demand: NoDemand},
	"cpu":        {Name: "cpu", Summary: "SHA-256 over a 64 KiB buffer, -ops times; op/s", Measures: []Measure{{Name: "cpu.sha256", Unit: "op/s", Better: measure.HigherIsBetter, Dimension: measure.CPU}}, Flags: cpuFlags, Demand: NoDemand},
	"mem": {Name: "mem", Summary: "STREAM copy and triad over three -size arrays; B/s", Measures: []Measure{{Name: "mem.copy", Unit: "B/s", Better: measure.HigherIsBetter, Dimension: measure.Memory}, {Name: "mem.triad", Unit: "B/s", Better: measure.HigherIsBetter, Dimension: measure.Memory}}, Flags: memFlags,
		Demand: func(fs *flag.FlagSet) Demand { return Demand{MemoryBytes: 3 * flagInt(fs, "size")} }},
	"syscall": {Name: "syscall", Summary: "getppid(2) in a tight loop, -ops times or for -time; sec/op", Measures: []Measure{{Name: "syscall.getppid", Unit: "sec/op", Better: measure.LowerIsBetter, Dimension: measure.Syscall}}, Flags: syscallFlags, Demand: NoDemand},
	"fileio": {Name: "fileio", Summary: "sequential write+fsync then read of -size bytes in -dir; B/s", Disk: true, HostPaths: []string{"dir"}, Measures: []Measure{{Name: "fileio.write", Unit: "B/s", Better: measure.HigherIsBetter, Dimension: measure.DiskBW}, {Name: "fileio.read", Unit: "B/s", Better: measure.HigherIsBetter, Dimension: measure.DiskBW}}, Flags: fileioFlags,
		Demand: func(fs *flag.FlagSet) Demand { return Demand{DiskBytes: flagInt(fs, "size")} }},
	"http": {Name: "http", Summary: "serve GET / on -addr; ready once it accepts connections", Server: true, Idle: true, Network: true, HTTPPath: "/", Flags: httpFlags, Demand: NoDemand},
	"alloc": {Name: "alloc", Summary: "allocate and touch -size bytes, then hold them; B", Measures: []Measure{{Name: "alloc.bytes", Unit: "B", Better: measure.NoBetter}}, Flags: allocFlags,
		Demand: func(fs *flag.FlagSet) Demand { return Demand{MemoryBytes: flagInt(fs, "size")} }},
	"probe":         {Name: "probe", Summary: "report what the instance sees: PID, hostname, interfaces, capabilities (tests)", HostPaths: []string{"write", "remove"}, Flags: probeFlags, Demand: NoDemand},
	"crash":         {Name: "crash", Summary: "exit with status -code without becoming ready (tests)", Server: true, Flags: crashFlags, Demand: NoDemand},
	"hang":          {Name: "hang", Summary: "never become ready (tests)", Server: true, Flags: hangFlags, Demand: NoDemand},
	ServiceWorkload: {Name: ServiceWorkload, Summary: "exec a user's service in its image's root (what a scenario's service: runs; not named by itself)", Server: true, Idle: true, Network: true, Command: true, Flags: serviceFlags, Demand: NoDemand},
}

func idleFlags(*flag.FlagSet) func(context.Context, *Agent) error {
	return func(context.Context, *Agent) error { return nil }
}

// positiveFlag is an int64 flag that rejects values below 1 when parsed, so a
// bad value is a usage error before the agent reports READY.
type positiveFlag int64

func (p *positiveFlag) String() string { return strconv.FormatInt(int64(*p), 10) }

func (p *positiveFlag) Set(s string) error {
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return errors.New("not an integer")
	}
	if v <= 0 {
		return fmt.Errorf("must be positive, got %d", v)
	}
	*p = positiveFlag(v)
	return nil
}

// durationFlag is a duration flag that rejects negative values when parsed.
type durationFlag time.Duration

func (d *durationFlag) String() string { return time.Duration(*d).String() }

func (d *durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration such as 500ms")
	}
	if v < 0 {
		return fmt.Errorf("must not be negative, got %v", v)
	}
	*d = durationFlag(v)
	return nil
}

// positive defines a positiveFlag on fs.
func positive(fs *flag.FlagSet, name string, value int64, usage string) *int64 {
	p := positiveFlag(value)
	fs.Var(&p, name, usage)
	return (*int64)(&p)
}

func cpuFlags(fs *flag.FlagSet) func(context.Context, *Agent) error {
	ops := positive(fs, "ops", 2000, "number of 64 KiB SHA-256 hashes")
	return func(ctx context.Context, a *Agent) error {
		buf := make([]byte, 64<<10)
		for i := range buf {
			buf[i] = byte(i)
		}
		start := time.Now()
		var sum [32]byte
		for i := int64(0); i < *ops; i++ {
			if i%256 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			sum = sha256.Sum256(buf)
			buf[0] = sum[0]
		}
		a.Result("cpu.sha256", float64(*ops)/time.Since(start).Seconds(), "op/s")
		return nil
	}
}

func memFlags(fs *flag.FlagSet) func(context.Context, *Agent) error {
	size := positive(fs, "size", 32<<20, "bytes per array (three arrays are used)")
	reps := positive(fs, "reps", 5, "repetitions; the best is reported, as STREAM does")
	return func(ctx context.Context, a *Agent) error {
		n := *size / 8
		x, y, z := make([]float64, n), make([]float64, n), make([]float64, n)
		for i := range x {
			x[i], y[i] = 1, 2
		}
		best := func(bytesPerRep float64, kernel func()) float64 {
			var top float64
			for r := int64(0); r < *reps && ctx.Err() == nil; r++ {
				start := time.Now()
				kernel()
				if v := bytesPerRep / time.Since(start).Seconds(); v > top {
					top = v
				}
			}
			return top
		}
		copyBW := best(float64(2*8*n), func() { copy(z, x) })
		const q = 3.0
		triadBW := best(float64(3*8*n), func() {
			for i := range z {
				z[i] = x[i] + q*y[i]
			}
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		a.Result("mem.copy", copyBW, "B/s")
		a.Result("mem.triad", triadBW, "B/s")
		return nil
	}
}

func syscallFlags(fs *flag.FlagSet) func(context.Context, *Agent) error {
	ops := positive(fs, "ops", 1_000_000, "number of getppid(2) calls")
	var limitFlag durationFlag
	fs.Var(&limitFlag, "time", "stop after this long even if fewer than -ops calls were made (0: no limit), for isolation layers where a call costs a hundred times more")
	limit := (*time.Duration)(&limitFlag)
	return func(ctx context.Context, a *Agent) error {
		start := time.Now()
		var done int64
		for done < *ops {
			n := min(*ops-done, 1024)
			for range n {
				unix.Getppid()
			}
			done += n
			if *limit > 0 && time.Since(start) >= *limit {
				break
			}
		}
		a.Result("syscall.getppid", time.Since(start).Seconds()/float64(done), "sec/op")
		return nil
	}
}

func fileioFlags(fs *flag.FlagSet) func(context.Context, *Agent) error {
	size := positive(fs, "size", 64<<20, "bytes to write and read back")
	dir := fs.String("dir", os.TempDir(), "directory for the test file")
	return func(ctx context.Context, a *Agent) error {
		w, r, err := fileio(ctx, *dir, *size)
		if err != nil {
			return err
		}
		a.Result("fileio.write", w, "B/s")
		a.Result("fileio.read", r, "B/s")
		return nil
	}
}

// fileio writes size bytes to a new file in dir with fsync, drops the file's
// clean pages from the page cache, reads it back, and returns both rates.
func fileio(ctx context.Context, dir string, size int64) (writeBps, readBps float64, err error) {
	f, err := os.CreateTemp(dir, "virtbench-fileio-")
	if err != nil {
		return 0, 0, fmt.Errorf("fileio: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, 1<<20)
	for i := range block {
		block[i] = byte(i * 7)
	}
	start := time.Now()
	for done := int64(0); done < size; {
		if ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		n := min(int64(len(block)), size-done)
		if _, err := f.Write(block[:n]); err != nil {
			return 0, 0, fmt.Errorf("fileio: write %s: %w", f.Name(), err)
		}
		done += n
	}
	if err := f.Sync(); err != nil {
		return 0, 0, fmt.Errorf("fileio: fsync %s: %w", f.Name(), err)
	}
	writeBps = float64(size) / time.Since(start).Seconds()
	// Clean pages can be dropped after fsync; reading then reaches the device.
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	if _, err := f.Seek(0, 0); err != nil {
		return 0, 0, fmt.Errorf("fileio: %w", err)
	}
	start = time.Now()
	var total int64
	for {
		n, err := f.Read(block)
		total += int64(n)
		if err != nil || n == 0 {
			break
		}
	}
	if total != size {
		return 0, 0, fmt.Errorf("fileio: read back %d bytes of %d from %s", total, size, filepath.Base(f.Name()))
	}
	return writeBps, float64(size) / time.Since(start).Seconds(), nil
}

// ListenEnv names the environment variable with the http workload's
// default listen address. Container and VM inits set it to ":0" (every
// interface of the instance's own network namespace); natively the default
// is loopback.
const ListenEnv = "VIRTBENCH_LISTEN"

func httpFlags(fs *flag.FlagSet) func(context.Context, *Agent) error {
	def := os.Getenv(ListenEnv)
	if def == "" {
		def = "127.0.0.1:0"
	}
	addr := fs.String("addr", def, "listen address")
	return func(ctx context.Context, a *Agent) error {
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			return fmt.Errorf("http: %w", err)
		}
		go func() {
			<-ctx.Done()
			ln.Close()
		}()
		a.Ready(Ready{Workload: "http", Addr: ln.Addr().String()})
		for {
			c, err := ln.Accept()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("http: %w", err)
			}
			go serveHTTP(c)
		}
	}
}

// httpResponse answers every request. A hand-written HTTP/1.1 responder
// keeps net/http (and its TLS and x509 packages) out of the agent, whose
// start-up time is part of every measurement.
const httpResponse = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"

// serveHTTP answers the GET requests of one keep-alive connection until the
// client closes it or sends a malformed or oversized request head.
func serveHTTP(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 4096)
	for {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		head := 0
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			head += len(line)
			if head > 16<<10 {
				return
			}
			if len(bytes.TrimRight(line, "\r\n")) == 0 {
				break
			}
		}
		if _, err := io.WriteString(c, httpResponse); err != nil {
			return
		}
	}
}

func allocFlags(fs *flag.FlagSet) func(context.Context, *Agent) error {
	size := positive(fs, "size", 64<<20, "bytes to allocate and touch")
	return func(ctx context.Context, a *Agent) error {
		b := make([]byte, *size)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		a.Result("alloc.bytes", float64(len(b)), "B")
		go func() {
			<-ctx.Done()
			b[0]++ // keep b alive until the instance stops
		}()
		return nil
	}
}

func crashFlags(fs *flag.FlagSet) func(context.Context, *Agent) error {
	code := fs.Int("code", 3, "exit status")
	return func(context.Context, *Agent) error {
		os.Exit(*code)
		return nil
	}
}

func hangFlags(*flag.FlagSet) func(context.Context, *Agent) error {
	return func(ctx context.Context, _ *Agent) error {
		<-ctx.Done()
		return nil
	}
}
