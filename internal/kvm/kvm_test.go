package kvm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	const amd = "processor\t: 0\nflags\t\t: fpu sse2 svm hypervisor\n"
	const pvm = "processor\t: 0\nflags\t\t: fpu sse2 hypervisor\n"
	tests := []struct {
		name    string
		dev     bool
		modules []string
		cpuinfo string
		want    string // substring of the error; "" for usable
	}{
		{"no device", false, []string{"kvm", "kvm_intel"}, amd, "no such file"},
		{"intel module", true, []string{"kvm", "kvm_intel"}, pvm, ""},
		{"amd module", true, []string{"kvm", "kvm_amd"}, pvm, ""},
		{"cpu flag, built-in module", true, nil, amd, ""},
		{"pvm", true, []string{"kvm", "kvm_pvm"}, pvm, "kvm_pvm"},
		{"nothing behind it", true, []string{"kvm"}, pvm, "no vmx or svm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dev := filepath.Join(dir, "kvm")
			if tt.dev {
				write(t, dev, "")
			}
			modules := filepath.Join(dir, "module")
			for _, m := range tt.modules {
				if err := os.MkdirAll(filepath.Join(modules, m), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cpuinfo := filepath.Join(dir, "cpuinfo")
			write(t, cpuinfo, tt.cpuinfo)
			err := check(dev, modules, cpuinfo)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("check = %v, want usable", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("check = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
