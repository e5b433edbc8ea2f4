// Package loadgen drives an HTTP load at one instance in the open model:
// requests leave at a constant rate whatever the answers' latency
// (vegeta's attacker with a constant pacer, its workers growing as
// answers lag), so that coordinated omission cannot hide a slow instance;
// every latency of the measured window is recorded (vegeta's metrics, a
// t-digest for the quantiles), and errors and timeouts are counted. A
// load Profile says the rate, the window and the warm-up before it, and
// optionally the objective (SLO) a window is judged against.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"virtbench/internal/units"
)

// Profile is the load offered to every instance of a workload.
type Profile struct {
	// Rate is the requests per second sent to each instance.
	Rate float64
	// Duration is the measured window; Warmup the load sent before it,
	// whose answers are not counted.
	Duration, Warmup time.Duration
	// Windows is how many windows an objective sweep's step sends, one
	// after another (at least 1): a step passes only when every window
	// of every instance met the objective, and one whose windows
	// disagree is unstable.
	Windows int
	// SLO is the objective each instance is judged against, or nil.
	SLO *SLO
}

// DefaultWarmup is a profile's warm-up when the scenario gives none.
const DefaultWarmup = 2 * time.Second

// MaxWindows bounds Profile.Windows.
const MaxWindows = 10

// SLO is a service level objective on one instance's window.
type SLO struct {
	// P99 bounds the 99th percentile latency (0: not judged).
	P99 time.Duration
	// Errors bounds the fraction of requests that fail (an error, a
	// timeout, a status other than 2xx).
	Errors float64
}

// Report is what one instance's measured window gave.
type Report struct {
	// Requests are those sent in the window.
	Requests uint64
	// Sent is the rate they left at; Achieved the rate of successful
	// answers, both per second of the window.
	Sent, Achieved float64
	// Errors is the fraction of the window's requests that failed;
	// FirstError says how one failed.
	Errors     float64
	FirstError string
	// The latency quantiles and the largest latency of the window's
	// requests.
	P50, P99, P999, Max time.Duration
}

// Timeout bounds one request: an answer later than this is a failure.
const Timeout = 5 * time.Second

// Run sends p's load to path over connections dial makes (from the host
// end of the instance's network path) for p.Warmup then p.Duration, and
// reports the window after the warm-up. ctx ends it early, with ctx's
// error.
func Run(ctx context.Context, dial func(context.Context) (net.Conn, error), path string, p Profile) (Report, error) {
	if p.Rate <= 0 || p.Duration <= 0 {
		return Report{}, fmt.Errorf("loadgen: a load needs a rate and a window (rate %v/s, window %v)", p.Rate, p.Duration)
	}
	client := &http.Client{
		Timeout: Timeout,
		Transport: &http.Transport{
			DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
			MaxIdleConnsPerHost: 1024,
			DisableCompression:  true,
		},
	}
	defer client.CloseIdleConnections()
	atk := vegeta.NewAttacker(vegeta.Client(client), vegeta.Timeout(Timeout), vegeta.Redirects(vegeta.NoFollow))
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: "http://instance" + path})
	pace := vegeta.ConstantPacer{Freq: int(p.Rate + 0.5), Per: time.Second}
	begin := time.Now()
	measured := begin.Add(p.Warmup)
	results := atk.Attack(tr, pace, p.Warmup+p.Duration, "virtbench")
	var m vegeta.Metrics
	var first string
	done := ctx.Done()
	for results != nil {
		select {
		case res, ok := <-results:
			if !ok {
				results = nil
				continue
			}
			if res.Timestamp.Before(measured) {
				continue
			}
			m.Add(res)
			if first == "" && res.Error != "" {
				first = res.Error
			}
		case <-done:
			atk.Stop()
			done = nil
		}
	}
	m.Close()
	if err := ctx.Err(); err != nil {
		return Report{}, fmt.Errorf("loadgen: %w", err)
	}
	if m.Requests == 0 {
		return Report{}, errors.New("loadgen: no request was sent in the window")
	}
	return Report{
		Requests: m.Requests, Sent: m.Rate, Achieved: m.Throughput,
		Errors: 1 - m.Success, FirstError: first,
		P50: m.Latencies.P50, P99: m.Latencies.P99, P999: m.Latencies.Quantile(0.999), Max: m.Latencies.Max,
	}, nil
}

// MinRequestsForP99 is the fewest requests of a window whose 99th
// percentile means something: ten requests beyond it. A p99 from fewer is
// weak, and a verdict on it says so.
const MinRequestsForP99 = 1000

// AchievedShare is the least share of its rate an instance must achieve
// to meet its objective.
const AchievedShare = 0.99

// Verdict is an objective's judgement of one window.
type Verdict struct {
	// Met is whether the window met the objective.
	Met bool
	// Weak marks a p99 from fewer than MinRequestsForP99 requests.
	Weak bool
	// Bound names what failed first (BoundRate, BoundErrors,
	// BoundLatency), and Why says how; both "" where the window met it.
	Bound, Why string
}

// What an objective's window fails on first.
const (
	BoundRate    = "rate"
	BoundErrors  = "errors"
	BoundLatency = "latency"
)

// Judge judges r, a window at rate, against the objective: at least
// AchievedShare of the rate answered, the errors and the p99 within
// their bounds.
func (s SLO) Judge(r Report, rate float64) Verdict {
	v := Verdict{Weak: r.Requests < MinRequestsForP99}
	switch {
	case r.Achieved < AchievedShare*rate:
		v.Bound, v.Why = BoundRate, fmt.Sprintf("achieved %.1f/s of %.1f/s", r.Achieved, rate)
	case r.Errors > s.Errors:
		v.Bound, v.Why = BoundErrors, fmt.Sprintf("errors %.2f%% above %.2f%%", 100*r.Errors, 100*s.Errors)
		if r.FirstError != "" {
			v.Why += " (" + r.FirstError + ")"
		}
	case s.P99 > 0 && r.P99 > s.P99:
		v.Bound, v.Why = BoundLatency, fmt.Sprintf("p99 %s above %v", units.Format(r.P99.Seconds(), "sec"), s.P99)
	default:
		v.Met = true
	}
	return v
}

// The ceiling's probe: windows of CeilingWindow, at rates doubling from
// CeilingStart up to CeilingMax.
const (
	CeilingStart  = 1000
	CeilingMax    = 64000
	CeilingWindow = 500 * time.Millisecond
)

// Ceiling measures the most requests per second one generator sends and
// has answered on this machine: against an HTTP server in this process
// that answers at once, at rates doubling from CeilingStart, a short
// window each, until one achieves less than AchievedShare of its rate.
// It returns the last rate achieved, or the rate the failing window did
// achieve where that is more (a loaded host may not keep up with even
// CeilingStart); CeilingMax where every one was.
func Ceiling(ctx context.Context) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("loadgen: ceiling: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
	go srv.Serve(ln)
	defer srv.Close()
	var d net.Dialer
	dial := func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", ln.Addr().String()) }
	ceiling := 0.0
	for rate := float64(CeilingStart); rate <= CeilingMax; rate *= 2 {
		r, err := Run(ctx, dial, "/", Profile{Rate: rate, Duration: CeilingWindow, Warmup: CeilingWindow / 5})
		if err != nil {
			return 0, fmt.Errorf("loadgen: ceiling: %w", err)
		}
		if r.Achieved < AchievedShare*rate {
			return max(ceiling, r.Achieved), nil
		}
		ceiling = rate
	}
	return ceiling, nil
}

// Job is one generator process's work (Child): one instance's window,
// sent to Addr (host:port, as the instance's network path reaches it from
// where the process runs) at Path.
type Job struct {
	Addr, Path string
	Profile    Profile
}

// ChildArg is the first argument that makes a virtbench binary (or a test
// binary whose TestMain asks) a generator process: Child.
const ChildArg = "internal-loadgen"

// Child is a generator process's whole work: it reads a Job (JSON) from
// in, runs it, and writes the Report (JSON) to out. A generator of its
// own is a process the host can hold in a cgroup and account for.
func Child(in io.Reader, out io.Writer) error {
	var job Job
	if err := json.NewDecoder(in).Decode(&job); err != nil {
		return fmt.Errorf("loadgen: job: %w", err)
	}
	var d net.Dialer
	dial := func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", job.Addr) }
	r, err := Run(context.Background(), dial, job.Path, job.Profile)
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(r)
}
