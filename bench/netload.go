package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"virtbench/drivers"
	"virtbench/guest"
	"virtbench/internal/hostload"
	"virtbench/internal/results"
)

// The network load: NetConns keep-alive connections send GET requests to
// the http workload for NetDuration, from a peer on the host, over the
// instance's virtual network path.
const (
	NetConns    = 4
	NetDuration = 2 * time.Second
)

// httpLoad sends requests for d over conns connections made by dial and
// returns the number of responses and every request's latency.
func httpLoad(ctx context.Context, dial func(context.Context) (net.Conn, error), path string, conns int, d time.Duration) (int, []time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var errs []error
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine, err := oneConn(ctx, dial, path)
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, mine...)
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if len(lat) == 0 {
		return 0, nil, fmt.Errorf("bench: no HTTP response: %w", errors.Join(errs...))
	}
	return len(lat), lat, nil
}

// oneConn sends requests one after another over a keep-alive connection
// until ctx ends, and returns each one's latency. A connection the server
// closes (nginx does after keepalive_requests) is made again, as wrk
// does, so that the server's limit is not the measure's.
func oneConn(ctx context.Context, dial func(context.Context) (net.Conn, error), path string) ([]time.Duration, error) {
	request := []byte("GET " + path + " HTTP/1.1\r\nHost: virtbench\r\n\r\n")
	var lat []time.Duration
	for ctx.Err() == nil {
		n := len(lat)
		var err error
		if lat, err = exchange(ctx, dial, request, lat); err != nil {
			return lat, err
		}
		if len(lat) == n {
			break // a connection that answered nothing
		}
	}
	return lat, nil
}

// exchange sends requests over one connection until ctx ends or the
// server closes it, appending each one's latency to lat.
func exchange(ctx context.Context, dial func(context.Context) (net.Conn, error), request []byte, lat []time.Duration) ([]time.Duration, error) {
	c, err := dial(ctx)
	if err != nil {
		if ctx.Err() != nil && len(lat) > 0 {
			return lat, nil
		}
		return lat, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	br := bufio.NewReader(c)
	for ctx.Err() == nil {
		start := time.Now()
		if _, err := c.Write(request); err != nil {
			return lat, nil // the deadline or the server ended the exchange
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return lat, nil
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return lat, fmt.Errorf("bench: HTTP response %d: %v", resp.StatusCode, err)
		}
		lat = append(lat, time.Since(start))
		if resp.Close {
			return lat, nil
		}
	}
	return lat, nil
}

// loadNet measures the http workload of one instance over its network path
// and records throughput and latency. Instances without a path are skipped.
// It reports whether the load failed (a failed sample says why).
func (t *trial) loadNet(ctx context.Context, st *started) (failed bool) {
	w, _ := guest.Lookup(t.w.Agent())
	if g, ok := w.Generator(); ok {
		if load, ok := hostload.For(g); ok {
			return t.loadTool(ctx, st, load)
		}
	}
	dialer, ok := st.inst.(drivers.Dialer)
	if !ok {
		return false
	}
	port, err := t.port(st)
	if err != nil {
		t.record(results.Sample{Instance: st.id, Metric: results.MetricNetRPS, Unit: "op/s", Error: err.Error()})
		return true
	}
	dial := func(ctx context.Context) (net.Conn, error) { return dialer.Dial(ctx, port) }
	if c, err := dial(ctx); errors.Is(err, drivers.ErrNotApplicable) {
		return false
	} else if err == nil {
		c.Close()
	}
	n, lat, err := httpLoad(ctx, dial, t.w.HTTPPath(), NetConns, NetDuration)
	if err != nil {
		t.record(results.Sample{Instance: st.id, Metric: results.MetricNetRPS, Unit: "op/s", Error: err.Error()})
		return true
	}
	slices.Sort(lat)
	t.record(results.Sample{Instance: st.id, Metric: results.MetricNetRPS, Unit: "op/s", Value: float64(n) / NetDuration.Seconds()})
	t.record(results.Sample{Instance: st.id, Metric: results.MetricNetP50, Unit: "sec", Value: lat[len(lat)/2].Seconds()})
	t.record(results.Sample{Instance: st.id, Metric: results.MetricNetP99, Unit: "sec", Value: lat[len(lat)*99/100].Seconds()})
	return false
}

// loadTool drives a tool's load (package hostload) at a server workload of
// one instance and records the workload's host measures. An instance the
// host has no network path to gets a failed sample that says so. It
// reports whether the load failed.
func (t *trial) loadTool(ctx context.Context, st *started, load hostload.Load) (failed bool) {
	w, _ := guest.Lookup(t.w.Agent())
	fail := func(why string) bool {
		m := w.HostMeasures[0]
		t.record(results.Sample{Instance: st.id, Metric: m.Name, Unit: m.Unit, Error: why})
		return true
	}
	port, err := t.port(st)
	if err != nil {
		return fail(err.Error())
	}
	pr, ok := st.inst.(drivers.PeerRunner)
	if !ok {
		return fail(fmt.Sprintf("%s gives host programs no network path to its instances", t.d.Name()))
	}
	vs, err := load(ctx, pr, port)
	if errors.Is(err, drivers.ErrNotApplicable) {
		return fail("the instance has no network path from the host (its driver's network option is none; veth or tap gives it one)")
	}
	if err != nil {
		return fail(err.Error())
	}
	for _, v := range vs {
		t.record(results.Sample{Instance: st.id, Metric: v.Name, Unit: v.Unit, Value: v.Value})
	}
	return false
}
