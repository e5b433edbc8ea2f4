package scenarios

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	_ "virtbench/drivers/all"
	"virtbench/internal/loadgen"
)

func TestBuiltinsValid(t *testing.T) {
	names := Builtins()
	if len(names) < 2 {
		t.Fatalf("Builtins() = %v, want at least quick and startup", names)
	}
	for _, n := range names {
		s, err := Builtin(n)
		if err != nil {
			t.Errorf("built-in %s: %v", n, err)
			continue
		}
		if s.Name != n {
			t.Errorf("built-in %s has name %q", n, s.Name)
		}
		if s.Description == "" {
			t.Errorf("built-in %s has no description", n)
		}
	}
}

func TestParse(t *testing.T) {
	s, err := Parse("ok.yaml", []byte(`
name: mine
drivers: native
workloads:
  - idle
  - name: cpu
    args: [-ops, "5"]
instances: [1, 4]
reps: 3
warmup: 0
timeout: 30s
pause: 250ms
memory: 64MiB
options: {qemu.accel: tcg}
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "mine" || len(s.Drivers) != 1 || len(s.Workloads) != 2 || s.Workloads[1].String() != "cpu -ops 5" ||
		len(s.Instances) != 2 || s.Reps != 3 || s.Warmup != 0 || s.Timeout != 30*time.Second || s.MemoryBytes != 64<<20 ||
		s.VariantOptions(Variant{Name: "q", Driver: "qemu"})["accel"] != "tcg" || s.Settle != DefaultSettle || s.Pause != 250*time.Millisecond || len(s.Hash) != 64 {
		t.Errorf("Parse = %+v", s)
	}
}

// TestStormAndAutoReps parses start storms beside instance counts, and
// repetitions until the figures are known.
func TestStormAndAutoReps(t *testing.T) {
	tests := []struct {
		name, src string
		points    []Point
		reps      int
		auto      *AutoReps
	}{
		{"storm only", "storm: [1, 8]\nreps: auto\n", []Point{{1, true, "storm.0"}, {8, true, "storm.1"}}, DefaultAutoMax, &AutoReps{Width: DefaultAutoWidth, Min: DefaultAutoMin}},
		{"instances and storm", "instances: [1]\nstorm: 32\nreps: {auto: 2.5%, min: 8, max: 40}\n", []Point{{1, false, "instances.0"}, {32, true, "storm.0"}}, 40, &AutoReps{Width: 0.025, Min: 8}},
		{"neither", "reps: 7\n", []Point{{1, false, "instances.0"}}, 7, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("ok.yaml", []byte("name: x\ndrivers: [native]\nworkloads: [idle]\n"+tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Points(); fmt.Sprint(got) != fmt.Sprint(tt.points) {
				t.Errorf("Points() = %v, want %v", got, tt.points)
			}
			if s.Reps != tt.reps || fmt.Sprint(s.Auto) != fmt.Sprint(tt.auto) {
				t.Errorf("reps %d auto %v, want %d %v", s.Reps, s.Auto, tt.reps, tt.auto)
			}
		})
	}
	for _, bad := range []string{"0", "-3", "often", ""} {
		if _, _, err := ParseReps(bad); err == nil {
			t.Errorf("ParseReps(%q) succeeded", bad)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // each a "file:line: message" fragment
	}{
		{"typo field", "name: x\ndrivers: [native]\nworklods: [idle]\n", []string{
			`bad.yaml:3: unknown field "worklods" (did you mean "workloads"?)`}},
		{"unknown driver", "name: x\ndrivers:\n  - native\n  - nativ\nworkloads: [idle]\n", []string{`bad.yaml:4: drivers: unknown driver "nativ"`}},
		{"bad workload flag", "name: x\ndrivers: [native]\nworkloads:\n  - idle\n  - name: cpu\n    args: [-ops, \"-1\"]\n", []string{"bad.yaml:5: workloads: cpu: invalid value"}},
		{"bad reps", "name: x\ndrivers: [native]\nworkloads: [idle]\nreps: 0\n", []string{"bad.yaml:4: reps: 0 is not between"}},
		{"service image missing", "name: x\ndrivers: [native]\nworkloads:\n  - name: web\n    service:\n      image: docker-archive:/nonexistent/web.tar\n      port: 80\n      ready: {tcp: true}\n", []string{"bad.yaml:6: service: image docker-archive:/nonexistent/web.tar: stat /nonexistent/web.tar: no such file"}},
		{"service transport unknown", "name: x\ndrivers: [native]\nworkloads:\n  - name: web\n    service:\n      image: podman:web\n      port: 80\n      ready: {tcp: true}\n", []string{"bad.yaml:6: service: image \"podman:web\": unknown transport"}},
		{"service regexp", "name: x\ndrivers: [native]\nworkloads:\n  - name: web\n    service:\n      image: rootfs:/\n      ready: {log: \"(\"}\n", []string{"bad.yaml:7: ready: log \"(\" is not a regular expression"}},
		{"service two probes", "name: x\ndrivers: [native]\nworkloads:\n  - name: web\n    service:\n      image: rootfs:/\n      port: 80\n      ready: {tcp: true, http: /}\n", []string{"bad.yaml:8: ready: give exactly one probe"}},
		{"service port", "name: x\ndrivers: [native]\nworkloads:\n  - name: web\n    service:\n      image: rootfs:/\n      port: 70000\n      ready: {tcp: true}\n", []string{"bad.yaml:7: service: port 70000 is not between 1 and 65535"}},
		{"service without a port", "name: x\ndrivers: [native]\nworkloads:\n  - name: web\n    service:\n      image: rootfs:/\n      ready: {http: /}\n", []string{"bad.yaml:6: service: a port is needed"}},
		{"service status", "name: x\ndrivers: [native]\nworkloads:\n  - name: web\n    service:\n      image: rootfs:/\n      port: 80\n      ready: {http: /, status: 999}\n", []string{"bad.yaml:8: ready: status 999 is not an HTTP status"}},
		{"newline in an argument", "name: x\ndrivers: [native]\nworkloads:\n  - name: http\n    args: [-addr, \"bad\\nVIRTBENCH READY {}\"]\n", []string{"bad.yaml:4: workloads: http: an argument holds a newline"}},
		{"NUL in an argument", "name: x\ndrivers: [native]\nworkloads:\n  - name: http\n    args: [-addr, \"a\\0b\"]\n", []string{"bad.yaml:4: workloads: http: an argument holds a newline, a carriage return or a NUL byte"}},
		{"kernel command line too long", "name: x\ndrivers: [qemu]\nworkloads:\n  - name: http\n    args: [-addr, \"" + strings.Repeat("a", 2100) + "\"]\n", []string{"bad.yaml:4: workloads: http -addr aaa", "the kernel command line with these agent arguments would be"}},
		{"space on the kernel command line", "name: x\ndrivers: [qemu]\nworkloads:\n  - name: http\n    args: [-addr, \"a b\"]\n", []string{"bad.yaml:4: workloads: http -addr a b under qemu: qemu: agent argument \"a b\" cannot be passed on the kernel command line"}},
		{"reps not int", "name: x\ndrivers: [native]\nworkloads: [idle]\nreps: many\n", []string{`bad.yaml:4: "many" is not an integer`}},
		{"bad duration", "name: x\ndrivers: [native]\nworkloads: [idle]\ntimeout: 5 minutes\n", []string{`bad.yaml:4: "5 minutes" is not a duration`}},
		{"bad size", "name: x\ndrivers: [native]\nworkloads: [idle]\nmemory: lots\n", []string{`bad.yaml:4: "lots" is not a size`}},
		{"bad density", "name: x\ndrivers: [native]\nworkloads: [idle]\ndensity:\n  step: cubic\n  factr: 2\n", []string{`bad.yaml:6: density: unknown field "factr" (did you mean "factor"?)`}},
		{"bad name", "name: ../../etc\ndrivers: [native]\nworkloads: [idle]\n", []string{"bad.yaml:1: name"}},
		{"huge instances", "name: x\ndrivers: [native]\nworkloads: [idle]\ninstances: [1, 1000000]\n", []string{"bad.yaml:4: instances: 1000000"}},
		{"syntax", "name: x\ndrivers: [native\n", []string{"bad.yaml:"}},
		{"not a mapping", "- a\n- b\n", []string{"bad.yaml:1: a scenario is a mapping"}},
		{"empty", "", []string{"bad.yaml: empty file"}},
		{"duplicate", "name: x\nname: y\ndrivers: [native]\nworkloads: [idle]\n", []string{`bad.yaml:2:`}},
		{"option key", "name: x\ndrivers: [native]\nworkloads: [idle]\noptions: {accel: tcg}\n", []string{`bad.yaml:4: options: key "accel"`}},
		{"option typo", "name: x\ndrivers: [native, qemu]\nworkloads: [idle]\noptions:\n  qemu.machine: pc\n  qemu.acel: tcg\n", []string{
			`bad.yaml:6: unknown option qemu.acel (did you mean qemu.accel?)`}},
		{"option value", "name: x\ndrivers: [qemu]\nworkloads: [idle]\noptions:\n  qemu.accel: fast\n", []string{
			`bad.yaml:5: option qemu.accel: "fast" is not one of auto, kvm, tcg`}},
		{"option of unknown driver", "name: x\ndrivers: [native]\nworkloads: [idle]\noptions: {qmeu.accel: tcg}\n", []string{
			`bad.yaml:4: options: qmeu.accel: unknown driver "qmeu" (did you mean "qemu"?)`}},
		{"variant option typo", "name: x\ndrivers:\n  - native\n  - name: q\n    driver: qemu\n    options:\n      devics: emulated\n", []string{
			`bad.yaml:7: unknown option qemu.devics (did you mean qemu.devices?)`}},
		{"variant options combine badly", "name: x\ndrivers:\n  - native\n  - {name: q, driver: qemu, options: {devices: emulated}}\nworkloads: [idle]\n", []string{
			`bad.yaml:4: drivers: q: qemu: devices=emulated needs machine=pc or q35`}},
		{"variant without driver", "name: x\ndrivers:\n  - {name: q, options: {accel: tcg}}\nworkloads: [idle]\n", []string{`bad.yaml:3: drivers: a variant needs a driver`}},
		{"variant name twice", "name: x\ndrivers:\n  - qemu\n  - {name: qemu, driver: qemu, options: {accel: tcg}}\nworkloads: [idle]\n", []string{`bad.yaml:4: drivers: "qemu" listed twice`}},
		{"variant field typo", "name: x\ndrivers:\n  - {name: q, driver: qemu, option: {accel: tcg}}\nworkloads: [idle]\n", []string{`bad.yaml:3: drivers: unknown field "option" (did you mean "options"?)`}},
		{"negative pause", "name: x\ndrivers: [native]\nworkloads: [idle]\npause: -1s\n", []string{"bad.yaml:4: pause: -1s is not between 0 and 1h"}},
		{"storm count", "name: x\ndrivers: [native]\nworkloads: [idle]\nstorm: [1, 0]\n", []string{"bad.yaml:4: storm: 0 is not between 1 and"}},
		{"storm and density", "name: x\ndrivers: [native]\nworkloads: [idle]\nstorm: [8]\ndensity: {max: 4}\n", []string{"bad.yaml:4: storm: a density sweep runs no trials to storm"}},
		{"reps auto width", "name: x\ndrivers: [native]\nworkloads: [idle]\nreps: {auto: 150%}\n", []string{"bad.yaml:4: reps: auto's width 1.5 is not between"}},
		{"reps auto field", "name: x\ndrivers: [native]\nworkloads: [idle]\nreps: {auto: 5%, maxx: 9}\n", []string{`bad.yaml:4: reps: unknown field "maxx" (did you mean "max"?)`}},
		{"reps auto min above max", "name: x\ndrivers: [native]\nworkloads: [idle]\nreps: {auto: 5%, min: 9, max: 6}\n", []string{"bad.yaml:4: reps: auto's min 9 is not between 1 and its max 6"}},
		{"variant workload not in scenario", "name: x\ndrivers:\n  - {name: q, driver: qemu, workloads: [fileio]}\nworkloads: [idle]\n", []string{`bad.yaml:3: drivers: q runs workload "fileio"`}},
		{"load on a workload that does not serve HTTP", "name: x\ndrivers: [native]\nworkloads:\n  - name: cpu\n    load: {rate: 50/s, duration: 10s}\n", []string{"bad.yaml:5: load: cpu does not serve HTTP; a load profile is for http, nginx"}},
		{"load rate zero", "name: x\ndrivers: [native]\nworkloads:\n  - name: http\n    load: {rate: 0/s, duration: 10s}\n", []string{"bad.yaml:5: load: rate 0/s is not between 1/s and"}},
		{"load rate unit", "name: x\ndrivers: [native]\nworkloads:\n  - name: http\n    load: {rate: 50/h, duration: 10s}\n", []string{`bad.yaml:5: "50/h" is not a rate such as 50/s`}},
		{"load window shorter than warm-up", "name: x\ndrivers: [native]\nworkloads:\n  - name: http\n    load:\n      rate: 50/s\n      duration: 1s\n      warmup: 5s\n", []string{"bad.yaml:6: load: the window (duration 1s) must be longer than its warm-up (5s)"}},
		{"load windows", "name: x\ndrivers: [native]\nworkloads:\n  - name: http\n    load: {rate: 50/s, duration: 10s, windows: 0}\n", []string{"bad.yaml:5: load: windows 0 is not between 1 and 10"}},
		{"load field typo", "name: x\ndrivers: [native]\nworkloads:\n  - name: http\n    load: {rate: 50/s, duraton: 10s}\n", []string{`bad.yaml:5: load: unknown field "duraton" (did you mean "duration"?)`}},
		{"load slo", "name: x\ndrivers: [native]\nworkloads:\n  - name: http\n    load:\n      rate: 50/s\n      duration: 20s\n      slo: {errors: 150%}\n", []string{"bad.yaml:8: load: slo: p99 must be a positive duration"}},
		{"load window too short for a p99", "name: x\ndrivers: [native]\nworkloads:\n  - name: http\n    load: {rate: 50/s, duration: 10s, slo: {p99: 50ms}}\n", []string{"bad.yaml:5: load: the window holds 500 requests per instance (rate × duration); a p99 judged against an objective needs 1000"}},
		{"density load without an objective", "name: x\ndrivers: [native]\nworkloads:\n  - name: http\n    load: {rate: 50/s, duration: 10s}\ndensity: {max: 4}\n", []string{"bad.yaml:5: load: a density sweep sends a load only to find how many instances meet its objective"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tt.src))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Errorf("error %v is not a *scenarios.Error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestVariants(t *testing.T) {
	s, err := Parse("v.yaml", []byte(`
name: v
drivers:
  - native
  - {name: qemu-emulated, driver: qemu, options: {machine: pc, devices: emulated}, workloads: [fileio]}
  - {name: qemu-virtio, driver: qemu, options: {machine: pc}}
workloads: [idle, fileio]
options:
  qemu.devices: virtio
  qemu.accel: tcg
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.VariantNames(), ","); got != "native,qemu-emulated,qemu-virtio" {
		t.Errorf("variants %s", got)
	}
	emulated, _ := s.Variant("qemu-emulated")
	virtio, _ := s.Variant("qemu-virtio")
	for _, tc := range []struct {
		v          Variant
		key, want  string
		runsIdle   bool
		runsFileio bool
	}{
		{emulated, "devices", "emulated", false, true}, // the variant's own setting wins
		{emulated, "accel", "tcg", false, true},        // the scenario's applies where it sets none
		{virtio, "devices", "virtio", true, true},
		{virtio, "machine", "pc", true, true},
	} {
		if got := s.VariantOptions(tc.v)[tc.key]; got != tc.want {
			t.Errorf("%s: %s = %q, want %q", tc.v.Name, tc.key, got, tc.want)
		}
		if tc.v.Runs("idle") != tc.runsIdle || tc.v.Runs("fileio") != tc.runsFileio {
			t.Errorf("%s runs idle %v, fileio %v", tc.v.Name, tc.v.Runs("idle"), tc.v.Runs("fileio"))
		}
	}
	if n, _ := s.Variant("native"); n.Driver != "native" || !n.Runs("idle") {
		t.Errorf("plain driver name: %+v", n)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"4096", 4096, true}, {"64KiB", 64 << 10, true}, {"256 MiB", 256 << 20, true}, {"2GiB", 2 << 30, true},
		{"100MB", 100e6, true}, {"-1", 0, false}, {"1XB", 0, false}, {"99999999999TiB", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("name: x\ndrivers: [native]\nworkloads: [idle]\n"))
	f.Add([]byte("name: x\ndrivers: native\nworkloads:\n  - name: cpu\n    args: [-ops, \"3\"]\ninstances: [1,2]\nmemory: 1GiB\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err == nil {
			if verr := s.Validate(); verr != nil {
				t.Fatalf("Parse accepted a scenario that Validate rejects: %v", verr)
			}
		}
	})
}

// TestHostPaths: settings that make virtbench run or touch a host program
// or file are named with their lines; built-in scenarios set none.
func TestHostPaths(t *testing.T) {
	s, err := Parse("evil.yaml", []byte(`name: evil
drivers:
  - native
  - name: q
    driver: qemu
    options:
      kernel: /etc/shadow
workloads:
  - name: fileio
    args: [-dir, /etc]
  - name: probe
    args: ["--remove=/etc/passwd"]
  - name: cpu
    args: [-ops, "5"]
options:
  qemu.binary: /tmp/x.sh
  qemu.accel: tcg
`))
	if err != nil {
		t.Fatal(err)
	}
	err = s.HostPaths()
	want := []string{
		"evil.yaml:16: options: qemu.binary names a host program or file (/tmp/x.sh)",
		"evil.yaml:7: drivers: q: qemu.kernel names a host program or file (/etc/shadow)",
		"evil.yaml:9: workloads: fileio -dir names a file",
		"evil.yaml:11: workloads: probe -remove names a file",
	}
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != len(want) {
		t.Fatalf("HostPaths() = %v, want %d errors", err, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d = %q, want it to start %q", i, errs[i], w)
		}
	}
	for _, n := range Builtins() {
		b, err := Builtin(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.HostPaths(); err != nil {
			t.Errorf("built-in %s: %v", n, err)
		}
	}
}

// TestParseLoad: a workload's load profile, with its rate per second,
// window, warm-up (or the default) and objective.
func TestParseLoad(t *testing.T) {
	s, err := Parse("ok.yaml", []byte(`name: x
drivers: [native]
workloads:
  - name: nginx
    load:
      rate: 3000/m
      duration: 30s
      windows: 3
      slo: {p99: 50ms, errors: 0.1%}
  - name: http
    load: {rate: 20, duration: 5s, warmup: 1s}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []loadgen.Profile{
		{Rate: 50, Duration: 30 * time.Second, Warmup: loadgen.DefaultWarmup, Windows: 3, SLO: &loadgen.SLO{P99: 50 * time.Millisecond, Errors: 0.001}},
		{Rate: 20, Duration: 5 * time.Second, Warmup: time.Second, Windows: 1},
	}
	for i, w := range s.Workloads {
		if got := w.Load; got == nil || !reflect.DeepEqual(*got, want[i]) {
			t.Errorf("workload %s: load %+v, want %+v", w.Name, got, want[i])
		}
	}
}

// TestCheckLoadRates: a rate beyond the generator's ceiling is refused
// with its line.
func TestCheckLoadRates(t *testing.T) {
	s, err := Parse("ok.yaml", []byte("name: x\ndrivers: [native]\nworkloads:\n  - idle\n  - name: http\n    load: {rate: 5000/s, duration: 5s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !s.HasLoad() || s.CheckLoadRates(8000) != nil {
		t.Errorf("a rate within the ceiling: HasLoad %v, %v", s.HasLoad(), s.CheckLoadRates(8000))
	}
	if err := s.CheckLoadRates(4000); err == nil || !strings.Contains(err.Error(), "ok.yaml:6: load: http's rate 5000/s is beyond what one generator sends on this host (its ceiling, measured now: 4000/s)") {
		t.Errorf("a rate beyond the ceiling: %v", err)
	}
}
