// Package hostload drives the field's load generators from the host at a
// server workload (iperf3, Redis, nginx) over an instance's network path
// and reads their results: iperf3's JSON, redis-benchmark's CSV, wrk's
// report.
//
// Every generator runs the same way for every driver, at the path's host
// end (Peer), and is bounded so that it cannot starve the
// instance it measures: one thread (wrk -t1, redis-benchmark --threads 1,
// one iperf3 stream), a fixed number of connections (Conns), and a fixed
// duration (redis-benchmark, which has none, a request count sized to
// last about Duration). One thread keeps at most one of the host's CPUs
// busy, leaving the others to the instance.
package hostload

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"virtbench/internal/measure"
	"virtbench/internal/tools"
)

// The bounds of every load.
const (
	// Conns is the connection count of redis-benchmark and wrk.
	Conns = 4
	// Duration is how long iperf3 sends each way and wrk runs.
	Duration = 2 * time.Second
	// RedisRequests is redis-benchmark's largest request count per test:
	// a fast instance's test ends by it, before Duration.
	RedisRequests = 20000
	// redisProbeRequests is the request count of the short first run that
	// says how fast the instance serves, and so the measured run's count
	// (redisRequests); it is also the smallest measured count.
	redisProbeRequests = 1000
)

// Peer is the host end of an instance's network path, where a load
// generator runs (Peer is one): PeerAddr is the address of
// the instance's TCP port as the path's host end sees it, and StartAtPeer
// starts cmd there.
type Peer interface {
	PeerAddr(port string) (string, error)
	StartAtPeer(cmd *exec.Cmd) error
}

// Load drives load at the server's port of an instance and returns the
// server workload's host measures.
type Load func(ctx context.Context, p Peer, port string) ([]measure.Value, error)

// loads are the loads by the load generator that drives them (a server
// workload's host tool).
var loads = map[string]Load{
	tools.IPerf3.Name:         iperf3,
	tools.RedisBenchmark.Name: redis,
	tools.Wrk.Name:            nginx,
}

// Takes says how long the load that generator drives takes at least: the
// plan's estimate counts it in every trial.
func Takes(generator tools.Tool) time.Duration {
	switch generator {
	case tools.IPerf3:
		return 2 * Duration
	case tools.Wrk:
		return Duration
	case tools.RedisBenchmark:
		return time.Second // a probe and 2 × RedisRequests at a host's 50k requests/s
	}
	return 0
}

// For returns the load a generator (a server workload's host tool)
// drives, if it drives one here.
func For(generator tools.Tool) (Load, bool) {
	l, ok := loads[generator.Name]
	return l, ok
}

// run runs tool t with args at the path's host end and returns its standard
// output. The tool must end within Duration and a margin for its setup
// (redis-benchmark, which has no duration, ends by its request count).
func run(ctx context.Context, p Peer, t tools.Tool, limit time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, t.Path, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = time.Second
	if err := p.StartAtPeer(cmd); err != nil {
		return nil, fmt.Errorf("%s: %w", t.Name, err)
	}
	if err := cmd.Wait(); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("did not finish within %v", limit)
		}
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = lastLine(out.String())
		}
		return nil, fmt.Errorf("%s %s: %v: %s", t.Name, strings.Join(args, " "), err, msg)
	}
	return out.Bytes(), nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// peerHostPort returns the instance's host and port as the path's host
// end sees them.
func peerHostPort(p Peer, port string) (host, prt string, err error) {
	addr, err := p.PeerAddr(port)
	if err != nil {
		return "", "", err
	}
	return net.SplitHostPort(addr)
}

func iperf3(ctx context.Context, p Peer, port string) ([]measure.Value, error) {
	host, port, err := peerHostPort(p, port)
	if err != nil {
		return nil, err
	}
	var vs []measure.Value
	var retrans float64
	for _, dir := range []struct {
		metric string
		args   []string
	}{{"iperf3.to_instance", nil}, {"iperf3.from_instance", []string{"--reverse"}}} {
		args := append([]string{"--client", host, "--port", port, "--time", strconv.Itoa(int(Duration / time.Second)), "--json", "--parallel", "1"}, dir.args...)
		bps, re, err := iperf3Once(ctx, p, args)
		if err != nil {
			return nil, err
		}
		vs = append(vs, measure.Value{Name: dir.metric, Value: bps, Unit: "bit/s"})
		retrans += re
	}
	return append(vs, measure.Value{Name: "iperf3.retransmits", Value: retrans, Unit: "segments"}), nil
}

// iperf3Busy are the words of iperf3's errors when its server is not yet
// ready for the next test: it reopens its port, and a slow instance is
// still finishing the last test.
var iperf3Busy = []string{"unable to connect", "server is busy", "Connection reset by peer"}

// iperf3Once runs one iperf3 test; a client that finds the server not yet
// ready tries again, for up to 5 seconds.
func iperf3Once(ctx context.Context, p Peer, args []string) (bps, retransmits float64, err error) {
	for try := 0; ; try++ {
		out, err := run(ctx, p, tools.IPerf3, Duration+20*time.Second, args...)
		if err == nil {
			bps, retransmits, err = ParseIPerf3(out)
		}
		if err == nil || try == 25 || ctx.Err() != nil || !slices.ContainsFunc(iperf3Busy, func(s string) bool { return strings.Contains(err.Error(), s) }) {
			return bps, retransmits, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ParseIPerf3 returns the throughput the receiver saw and the sender's
// retransmits from iperf3's --json output.
func ParseIPerf3(out []byte) (bps, retransmits float64, err error) {
	var doc struct {
		Error string `json:"error"`
		End   struct {
			Sent struct {
				Retransmits float64 `json:"retransmits"`
			} `json:"sum_sent"`
			Received struct {
				BPS float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return 0, 0, fmt.Errorf("iperf3: its JSON output: %w", err)
	}
	if doc.Error != "" {
		return 0, 0, fmt.Errorf("iperf3: %s", doc.Error)
	}
	if doc.End.Received.BPS <= 0 {
		return 0, 0, fmt.Errorf("iperf3: no throughput in its output")
	}
	return doc.End.Received.BPS, doc.End.Sent.Retransmits, nil
}

// redis runs redis-benchmark's SET and GET twice: a probe of
// redisProbeRequests says the instance's rate, and the measured run takes
// as many requests as that rate serves in Duration (redisRequests), so
// that a slow instance (a loaded TCG guest serves a few hundred requests a
// second) is measured in about the time a fast one is. The measured run
// must end within four times what the probe's rate takes, and a margin for
// its setup.
func redis(ctx context.Context, p Peer, port string) ([]measure.Value, error) {
	host, port, err := peerHostPort(p, port)
	if err != nil {
		return nil, err
	}
	bench := func(n int, limit time.Duration) ([]measure.Value, error) {
		out, err := run(ctx, p, tools.RedisBenchmark, limit+20*time.Second, "-h", host, "-p", port, "-t", "get,set",
			"-n", strconv.Itoa(n), "-c", strconv.Itoa(Conns), "--threads", "1", "--csv")
		if err != nil {
			return nil, err
		}
		return ParseRedisBenchmark(out)
	}
	probe, err := bench(redisProbeRequests, 40*time.Second)
	if err != nil {
		return nil, fmt.Errorf("probe of %d requests: %w", redisProbeRequests, err)
	}
	rate := min(probe[0].Value, probe[1].Value) // ParseRedisBenchmark's GET and SET rates
	if !(rate > 0) {
		return nil, fmt.Errorf("probe of %d requests: a rate of %v requests/s", redisProbeRequests, rate)
	}
	n := redisRequests(rate)
	return bench(n, 4*2*time.Duration(float64(n)/rate*float64(time.Second)))
}

// redisRequests returns the request count that a server of rate requests
// per second serves in Duration, within [redisProbeRequests,
// RedisRequests].
func redisRequests(rate float64) int {
	n := rate * Duration.Seconds()
	switch {
	case !(n > redisProbeRequests): // also NaN
		return redisProbeRequests
	case n > RedisRequests:
		return RedisRequests
	}
	return int(n)
}

// ParseRedisBenchmark returns GET and SET requests per second and GET's
// latency p50 and p99 from redis-benchmark's --csv output.
func ParseRedisBenchmark(out []byte) ([]measure.Value, error) {
	rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil || len(rows) < 2 {
		return nil, fmt.Errorf("redis-benchmark: its CSV output: %v: %q", err, lastLine(string(out)))
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	tests := map[string][]string{}
	for _, r := range rows[1:] {
		tests[r[0]] = r
	}
	num := func(test, field string) (float64, error) {
		r, ok := tests[test]
		i, ok2 := col[field]
		if !ok || !ok2 || i >= len(r) {
			return 0, fmt.Errorf("redis-benchmark: no %s %s in its output", test, field)
		}
		return strconv.ParseFloat(r[i], 64)
	}
	var vs []measure.Value
	for _, f := range []struct {
		name, test, field, unit string
		scale                   float64
	}{
		{"redis.get_rps", "GET", "rps", "op/s", 1}, {"redis.set_rps", "SET", "rps", "op/s", 1},
		{"redis.get_p50", "GET", "p50_latency_ms", "sec", 1e-3}, {"redis.get_p99", "GET", "p99_latency_ms", "sec", 1e-3},
	} {
		v, err := num(f.test, f.field)
		if err != nil {
			return nil, err
		}
		vs = append(vs, measure.Value{Name: f.name, Value: v * f.scale, Unit: f.unit})
	}
	return vs, nil
}

func nginx(ctx context.Context, p Peer, port string) ([]measure.Value, error) {
	addr, err := p.PeerAddr(port)
	if err != nil {
		return nil, err
	}
	out, err := run(ctx, p, tools.Wrk, Duration+20*time.Second, "-t", "1", "-c", strconv.Itoa(Conns),
		"-d", fmt.Sprintf("%ds", int(Duration/time.Second)), "--latency", "http://"+addr+tools.NginxFile)
	if err != nil {
		return nil, err
	}
	return ParseWrk(out)
}

// ParseWrk returns requests per second and the latency's p50 and p99 from
// wrk's --latency report; a report of failed requests is an error.
func ParseWrk(out []byte) ([]measure.Value, error) {
	var rps, p50, p99 float64
	var haveRPS, have50, have99 bool
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return nil, fmt.Errorf("wrk: %q: %w", sc.Text(), err)
			}
			rps, haveRPS = v, true
		case len(f) == 2 && (f[0] == "50%" || f[0] == "99%"):
			v, err := wrkDuration(f[1])
			if err != nil {
				return nil, err
			}
			if f[0] == "50%" {
				p50, have50 = v, true
			} else {
				p99, have99 = v, true
			}
		case len(f) >= 1 && (f[0] == "Non-2xx" || f[0] == "Socket"):
			return nil, fmt.Errorf("wrk: %s", strings.TrimSpace(sc.Text()))
		}
	}
	if !haveRPS || !have50 || !have99 {
		return nil, fmt.Errorf("wrk: no requests/sec or latency distribution in its report: %q", lastLine(string(out)))
	}
	return []measure.Value{{Name: "nginx.rps", Value: rps, Unit: "op/s"}, {Name: "nginx.p50", Value: p50, Unit: "sec"}, {Name: "nginx.p99", Value: p99, Unit: "sec"}}, nil
}

// wrkDuration parses wrk's latency figures: 66.00us, 1.23ms, 2.01s, 1.00m.
func wrkDuration(s string) (float64, error) {
	for _, u := range []struct {
		suffix string
		scale  float64
	}{{"us", 1e-6}, {"ms", 1e-3}, {"s", 1}, {"m", 60}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("wrk: latency %q: %w", s, err)
			}
			return f * u.scale, nil
		}
	}
	return 0, fmt.Errorf("wrk: latency %q has no unit", s)
}
