// Package required turns a test's skip for a missing capability into a
// failure where the capability is known to exist, so that a test run cannot
// pass by skipping what it was meant to test.
//
// VIRTBENCH_REQUIRE lists the capabilities, by name, that the host provides:
// drivers (native, container, runc, crun, gvisor, docker, podman, lxc, libvirt, qemu) and other names a
// test skips on (root, kvm, chromium, wine, ansible, tools: fio, iperf3, Redis,
// nginx and wrk). .ci/run sets it to what the CI
// machine has; a developer's machine that lacks something leaves it unset
// and sees the skips with the reason and how to enable them.
package required

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// Env is the environment variable that lists required capabilities,
// separated by commas.
const Env = "VIRTBENCH_REQUIRE"

// Listed reports whether name is in $VIRTBENCH_REQUIRE.
func Listed(name string) bool {
	return slices.Contains(strings.Split(os.Getenv(Env), ","), name)
}

// Skip skips t for a capability the host lacks, with reason (which should
// say how to get it), or fails t when name is required.
func Skip(t testing.TB, name, reason string) {
	t.Helper()
	if Listed(name) {
		t.Fatalf("%s is required ($%s=%s) but this host lacks it: %s", name, Env, os.Getenv(Env), reason)
	}
	t.Skipf("%s: %s", name, reason)
}
