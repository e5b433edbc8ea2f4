package container_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"virtbench/drivers"
	"virtbench/drivers/drivertest"
)

// TestVethNetwork serves HTTP in a container with network=veth and fetches
// from it through the peer namespace; the host's own interfaces never see
// the pair.
func TestVethNetwork(t *testing.T) {
	drivertest.RequiresRoot(t)
	before := hostLinks(t)
	env := drivertest.NewEnv(t, drivertest.Options{Options: map[string]string{"network": "veth"}})
	inst := drivertest.Start(t, factory, env, drivers.Spec{ID: "net", Workload: "http"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := inst.Ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(r.Guest.Addr)
	if err != nil {
		t.Fatalf("READY address %q: %v", r.Guest.Addr, err)
	}
	c, err := inst.(drivers.Dialer).Dial(ctx, port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !strings.HasPrefix(c.RemoteAddr().String(), "10.213.") {
		t.Errorf("connected to %s, want the container's veth address in 10.213.0.0/16", c.RemoteAddr())
	}
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("response %v, %v", resp, err)
	}
	if after := hostLinks(t); after != before {
		t.Errorf("host interfaces changed: %q before, %q while the container runs", before, after)
	}
}

// hostLinks lists the host's network interfaces.
func hostLinks(t *testing.T) string {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	return strings.Join(names, ",")
}
