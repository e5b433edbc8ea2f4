// Package kvm tells whether this host offers hardware-assisted
// virtualization through /dev/kvm.
package kvm

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// Check returns nil when /dev/kvm opens for reading and writing and is
// backed by the CPU's virtualization extensions (VT-x or AMD-V: the
// kvm_intel or kvm_amd module, or a vmx or svm CPU flag). Otherwise it says
// why not. A /dev/kvm served by kvm_pvm (PVM, which runs guests without
// those extensions and boots only PVM-enabled guest kernels) is not
// hardware-assisted and is reported so.
func Check() error { return check("/dev/kvm", "/sys/module", "/proc/cpuinfo") }

// check is Check with the paths it reads as parameters.
func check(dev, modules, cpuinfo string) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	f.Close()
	for _, m := range []string{"kvm_intel", "kvm_amd"} {
		if _, err := os.Stat(filepath.Join(modules, m)); err == nil {
			return nil
		}
	}
	if cpuFlag(cpuinfo, "vmx", "svm") {
		return nil
	}
	if _, err := os.Stat(filepath.Join(modules, "kvm_pvm")); err == nil {
		return errors.New("/dev/kvm is served by kvm_pvm (software virtualization without VT-x/AMD-V that boots only PVM-enabled guest kernels), not by hardware-assisted KVM")
	}
	return errors.New("/dev/kvm exists but the CPU shows no VT-x/AMD-V (no vmx or svm flag, no kvm_intel or kvm_amd module)")
}

// cpuFlag reports whether the first CPU's flags in cpuinfo hold one of names.
func cpuFlag(cpuinfo string, names ...string) bool {
	f, err := os.Open(cpuinfo)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(k) != "flags" {
			continue
		}
		for _, flag := range strings.Fields(v) {
			for _, n := range names {
				if flag == n {
					return true
				}
			}
		}
		return false
	}
	return false
}
