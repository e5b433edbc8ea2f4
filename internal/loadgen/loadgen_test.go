package loadgen

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serve starts an HTTP server whose every answer takes delay, and
// returns a dialer to it and the count of requests it answered.
func serve(t *testing.T, delay time.Duration, status int) (func(context.Context) (net.Conn, error), *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		time.Sleep(delay)
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	var d net.Dialer
	return func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }, &n
}

// TestOpenModel: the load leaves at its rate even when every answer takes
// longer than the interval between requests (a closed loop would send
// one request per answer), and the window counts only what followed the
// warm-up.
func TestOpenModel(t *testing.T) {
	dial, served := serve(t, 50*time.Millisecond, http.StatusOK)
	p := Profile{Rate: 200, Duration: time.Second, Warmup: 200 * time.Millisecond}
	r, err := Run(context.Background(), dial, "/", p)
	if err != nil {
		t.Fatal(err)
	}
	// 200 requests in the window; a closed loop on one connection would
	// have sent about 20.
	if r.Requests < 100 || r.Requests > 300 {
		t.Errorf("%d requests in a 1s window at 200/s", r.Requests)
	}
	if r.Errors != 0 || r.P50 < 50*time.Millisecond || r.P99 < r.P50 || r.P999 < r.P99 || r.Max < r.P999 {
		t.Errorf("report %+v: want no errors and 50ms <= p50 <= p99 <= p999 <= max", r)
	}
	if got := served.Load(); got < int64(r.Requests) {
		t.Errorf("the server answered %d requests, fewer than the window's %d", got, r.Requests)
	}
}

func TestErrorsCounted(t *testing.T) {
	dial, _ := serve(t, 0, http.StatusServiceUnavailable)
	r, err := Run(context.Background(), dial, "/", Profile{Rate: 50, Duration: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 1 || r.Achieved != 0 || !strings.Contains(r.FirstError, "503") {
		t.Errorf("report %+v: want every request failed with 503", r)
	}
}

func TestRunCancelled(t *testing.T) {
	dial, _ := serve(t, 0, http.StatusOK)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Run(ctx, dial, "/", Profile{Rate: 10, Duration: time.Minute}); err == nil {
		t.Error("a cancelled load reported a window")
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("a cancelled load took %v to return", el)
	}
}

func TestJudge(t *testing.T) {
	slo := SLO{P99: 50 * time.Millisecond, Errors: 0.001}
	tests := []struct {
		name string
		r    Report
		met  bool
		weak bool
		why  string
	}{
		{"met", Report{Requests: 1000, Achieved: 50, P99: 10 * time.Millisecond}, true, false, ""},
		{"rate short", Report{Requests: 1000, Achieved: 49, P99: 10 * time.Millisecond}, false, false, "achieved 49.0/s of 50.0/s"},
		{"errors", Report{Requests: 1000, Achieved: 50, Errors: 0.01, FirstError: "timeout"}, false, false, "errors 1.00% above 0.10% (timeout)"},
		{"slow", Report{Requests: 1000, Achieved: 50, P99: 60 * time.Millisecond}, false, false, "p99 60.00ms above 50ms"},
		{"few requests", Report{Requests: 999, Achieved: 50, P99: time.Millisecond}, true, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := slo.Judge(tt.r, 50)
			if v.Met != tt.met || v.Weak != tt.weak || v.Why != tt.why {
				t.Errorf("verdict %+v, want met %v weak %v why %q", v, tt.met, tt.weak, tt.why)
			}
		})
	}
}

// TestCeiling: the generator's ceiling is a rate it achieved, within the
// probe's range.
func TestCeiling(t *testing.T) {
	c, err := Ceiling(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c <= 0 || c > CeilingMax {
		t.Errorf("ceiling %v/s, want above 0 and at most %d/s", c, CeilingMax)
	}
}
