package hostload

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"virtbench/guest"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The parsers read the tools' real output, kept in testdata as each tool
// (Debian's iperf3 3.12, redis-benchmark 7.0, wrk 4.1) wrote it.
func TestParseIPerf3(t *testing.T) {
	bps, re, err := ParseIPerf3(read(t, "iperf3-reverse.json"))
	if err != nil || bps != 21412626403.283787 || re != 5 {
		t.Errorf("ParseIPerf3 = %v bit/s, %v retransmits, %v", bps, re, err)
	}
	for _, tt := range []struct{ name, out, want string }{
		{"error", `{"start": {}, "intervals": [], "end": {}, "error": "unable to connect to server: Connection refused"}`, "Connection refused"},
		{"no throughput", `{"end": {"sum_received": {"bits_per_second": 0}}}`, "no throughput"},
		{"not JSON", `iperf3: error`, "JSON"},
	} {
		if _, _, err := ParseIPerf3([]byte(tt.out)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
}

func TestParseRedisBenchmark(t *testing.T) {
	got, err := ParseRedisBenchmark(read(t, "redis-benchmark.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want := []guest.Value{{Name: "redis.get_rps", Value: 57803.47, Unit: "op/s"}, {Name: "redis.set_rps", Value: 56980.05, Unit: "op/s"},
		{Name: "redis.get_p50", Value: 0.047e-3, Unit: "sec"}, {Name: "redis.get_p99", Value: 0.095e-3, Unit: "sec"}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].Name != want[i].Name || got[i].Unit != want[i].Unit || !near(got[i].Value, want[i].Value) {
			t.Errorf("result %d = %v, want %v", i, got[i], want[i])
		}
	}
	if _, err := ParseRedisBenchmark([]byte("\"test\",\"rps\"\n\"SET\",\"1\"\n")); err == nil || !strings.Contains(err.Error(), "GET") {
		t.Errorf("output without GET: %v", err)
	}
}

func TestParseWrk(t *testing.T) {
	got, err := ParseWrk(read(t, "wrk.txt"))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"nginx.rps", "nginx.p50", "nginx.p99"}
	for i, v := range got {
		if v.Name != names[i] || v.Value <= 0 {
			t.Errorf("result %d = %v, want a positive %s", i, v, names[i])
		}
	}
	if got[1].Value >= got[2].Value {
		t.Errorf("p50 %v not below p99 %v", got[1].Value, got[2].Value)
	}
	if _, err := ParseWrk(read(t, "wrk-non2xx.txt")); err == nil || !strings.Contains(err.Error(), "Non-2xx") {
		t.Errorf("a report of failed requests: %v, want an error", err)
	}
	for _, tt := range []struct {
		in   string
		want float64
	}{{"66.00us", 66e-6}, {"1.23ms", 1.23e-3}, {"2.01s", 2.01}, {"1.00m", 60}} {
		if v, err := wrkDuration(tt.in); err != nil || !near(v, tt.want) {
			t.Errorf("wrkDuration(%q) = %v, %v; want %v", tt.in, v, err, tt.want)
		}
	}
}

func near(a, b float64) bool { return a > b*0.999999 && a < b*1.000001 }

func TestRedisRequests(t *testing.T) {
	for _, tt := range []struct {
		rate float64
		want int
	}{
		{0, redisProbeRequests},
		{100, redisProbeRequests},
		{3000, 6000},
		{50000, RedisRequests},
	} {
		if got := redisRequests(tt.rate); got != tt.want {
			t.Errorf("redisRequests(%v) = %d, want %d", tt.rate, got, tt.want)
		}
	}
}
