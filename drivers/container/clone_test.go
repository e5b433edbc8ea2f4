package container_test

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"virtbench/internal/required"
)

// BenchmarkCloneNamespaces splits the container's clone phase: fork and
// exec of a small program with no new namespace, with each namespace the
// container asks for alone, and with all of them. The differences are
// what each namespace costs the kernel to create (and to tear down: the
// benchmark waits for each exit).
func BenchmarkCloneNamespaces(b *testing.B) {
	if os.Geteuid() != 0 {
		required.Skip(b, "root", "needs root to create namespaces (run the benchmark as root)")
	}
	bin, err := exec.LookPath("true")
	if err != nil {
		required.Skip(b, "coreutils", "no true(1): "+err.Error()+": apt-get install coreutils")
	}
	for _, ns := range []struct {
		name  string
		flags uintptr
	}{
		{"none", 0},
		{"pid", syscall.CLONE_NEWPID},
		{"mount", syscall.CLONE_NEWNS},
		{"uts", syscall.CLONE_NEWUTS},
		{"ipc", syscall.CLONE_NEWIPC},
		{"net", syscall.CLONE_NEWNET},
		{"all", syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWNET},
	} {
		b.Run(ns.name, func(b *testing.B) {
			for range b.N {
				cmd := exec.Command(bin)
				cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: ns.flags}
				if err := cmd.Run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
