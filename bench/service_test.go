package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	_ "virtbench/drivers/container" // the drivers that run services
	_ "virtbench/drivers/docker"
	_ "virtbench/drivers/qemu"
	_ "virtbench/drivers/runc"
	"virtbench/images"
	"virtbench/internal/required"
	"virtbench/internal/results"
)

// exampleArchives writes the example nginx image, listening on a port
// free now (tests of other packages run beside), as a docker-archive and
// an OCI layout in dir.
func exampleArchives(t *testing.T, dir string) (archive, layout string, port int) {
	t.Helper()
	if os.Geteuid() != 0 {
		required.Skip(t, "root", "a service's root is an overlay mount: run the tests as root")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	img, err := images.ExampleImage(filepath.Join(dir, "root"), port)
	if err != nil {
		required.Skip(t, "tools", fmt.Sprintf("%v (apt-get install nginx-light)", err))
	}
	// The docker driver loads the image once: the engine's copy goes with
	// the test (its port makes it the test's own).
	if digest, err := img.Digest(); err == nil {
		t.Cleanup(func() { exec.Command("docker", "rmi", "-f", images.ServiceRepo+":"+digest.Hex[:16]).Run() })
	}
	archive, layout = filepath.Join(dir, "web.tar"), filepath.Join(dir, "oci")
	if err := images.WriteDockerArchive(archive, "example/web:1", img); err != nil {
		t.Fatal(err)
	}
	if err := images.WriteOCILayout(layout, "v1", img); err != nil {
		t.Fatal(err)
	}
	return archive, layout, port
}

// serviceDrivers are the variants TestRunnerService serves the example
// image in: every driver that runs a service, a VM cold and restored.
const serviceDrivers = `
  - native
  - container
  - runc
  - gvisor
  - docker
  - qemu
  - {name: qemu-template, driver: qemu, options: {boot: template}}
`

// TestRunnerService serves the example image, read from a docker-archive
// and from an OCI layout, in every driver that runs a service, each probed
// over HTTP from the host: every start ends at the probe, after the
// agent's exec, the network step reaches nginx, and the writable layer and
// the image's disk are measured. A driver this host lacks is skipped
// unless it is required.
func TestRunnerService(t *testing.T) {
	archive, layout, port := exampleArchives(t, t.TempDir())
	for _, tc := range []struct{ image, drivers string }{
		{"docker-archive:" + archive, serviceDrivers},
		{"oci:" + layout + ":v1", "[native, container]"},
	} {
		t.Run(strings.SplitN(tc.image, ":", 2)[0], func(t *testing.T) {
			sc := scenario(t, fmt.Sprintf(`name: t
drivers: %s
workloads:
  - name: web
    service:
      image: %s
      port: %d
      ready: {http: /healthz, status: 200}
reps: 1
warmup: 0
settle: 0s
timeout: 120s
`, tc.drivers, tc.image, port))
			samples, out, err := runScenario(t, context.Background(), sc)
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Failures) > 0 {
				t.Fatalf("failures: %v", out.Failures)
			}
			for name, why := range out.Skipped {
				v, _ := sc.Variant(name)
				if required.Listed(v.Driver) {
					t.Errorf("%s is required but was skipped: %s", name, why)
				} else {
					t.Logf("skipped %s: %s", name, why)
				}
			}
			ran := 0
			for _, v := range sc.Drivers {
				if _, skipped := out.Skipped[v.Name]; skipped {
					continue
				}
				ran++
				var start, agent, svc float64
				for _, s := range samples {
					if s.Variant != v.Name || s.Workload != "web" {
						continue
					}
					switch s.Metric {
					case results.MetricStartup:
						start = s.Value
					case results.PhaseMetricPrefix + results.PhaseService:
						svc = s.Value
					case results.PhaseMetricPrefix + results.PhaseAgent:
						agent = s.Value
					}
				}
				if svc <= 0 || start < svc || start < agent {
					t.Errorf("%s: startup %v s, agent %v s, service %v s: the service's phase must be in the start", v.Name, start, agent, svc)
				}
			}
			for _, m := range []string{results.MetricNetRPS, results.MetricPSS, results.MetricServiceImageAllocated} {
				if n := count(samples, m, false); n < ran {
					t.Errorf("%s: %d samples, want one per variant that ran (%d)", m, n, ran)
				}
			}
			if out.Services["web"] == "" {
				t.Error("run.json's services does not describe the service")
			}
		})
	}
}

// TestRunnerServiceNotReady fails the start of a service whose probe never
// succeeds, with the probe's last error, and of a service whose command
// the image lacks, before anything starts, with the file and line.
func TestRunnerServiceNotReady(t *testing.T) {
	archive, _, port := exampleArchives(t, t.TempDir())
	sc := scenario(t, fmt.Sprintf(`name: t
drivers: [native]
workloads:
  - name: web
    service:
      image: docker-archive:%s
      port: %d
      ready: {tcp: true}
reps: 1
warmup: 0
timeout: 3s
`, archive, port+1))
	_, out, err := runScenario(t, context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Failures) == 0 || !strings.Contains(out.Failures[0], "connection refused") {
		t.Errorf("failures %q, want the probe's connection refused", out.Failures)
	}
	sc = scenario(t, fmt.Sprintf(`name: t
drivers: [native]
workloads:
  - name: web
    service:
      image: docker-archive:%s
      command: [/usr/bin/missing]
      port: 8080
      ready: {tcp: true}
`, archive))
	_, _, err = runScenario(t, context.Background(), sc)
	if err == nil || !strings.Contains(err.Error(), "test.yaml:7") || !strings.Contains(err.Error(), "/usr/bin/missing") {
		t.Errorf("error %v, want test.yaml:7 naming the missing command", err)
	}
}

// TestRunnerServiceLoad sends a load profile to a service in a container,
// at its readiness path, and judges each window against the objective.
func TestRunnerServiceLoad(t *testing.T) {
	archive, _, port := exampleArchives(t, t.TempDir())
	sc := scenario(t, fmt.Sprintf(`name: t
drivers: [container]
workloads:
  - name: web
    service:
      image: docker-archive:%s
      port: %d
      ready: {http: /healthz, status: 200}
    load: {rate: 1000/s, duration: 1s, warmup: 200ms, slo: {p99: 2s, errors: 1%%}}
reps: 1
warmup: 0
settle: 0s
`, archive, port))
	samples, out, err := runScenario(t, context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Failures) > 0 {
		t.Fatalf("failures: %v", out.Failures)
	}
	for _, s := range samples {
		if s.Metric == results.MetricLoadRequests && s.Value < 100 {
			t.Errorf("%v requests in a 1s window at 1000/s", s.Value)
		}
		if s.Metric == results.MetricLoadSLOMet && s.Value != 100 {
			t.Errorf("nginx missed a 2s p99 at 1000/s: %v", s.Value)
		}
	}
	if count(samples, results.MetricLoadRequests, false) != 1 {
		t.Errorf("%d load windows, want 1", count(samples, results.MetricLoadRequests, false))
	}
}
