package guest

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// VulnerabilitiesDir is where Linux lists the CPU vulnerabilities it knows
// of and how it mitigates each.
const VulnerabilitiesDir = "/sys/devices/system/cpu/vulnerabilities"

// KernelInfoEnv, when set in the agent's environment, makes READY carry the
// kernel's release and mitigations (see Ready.Kernel); a VM's agent always
// sends them. Drivers whose instances run on a kernel of their own (a
// sandboxed kernel) set it; on the host's kernel the provenance has them.
const KernelInfoEnv = "VIRTBENCH_KERNEL_INFO"

// NotExposed is the Mitigations of a kernel that does not list them.
const NotExposed = "not exposed"

// Mitigations summarises the vulnerability files in dir on one line:
// "name=how" for each vulnerability the kernel does not call "Not
// affected", sorted by name, where how is the first clause of its
// mitigation ("PTI", "Retpolines") or "vulnerable". It returns NotExposed
// when dir cannot be read, and "none" when every vulnerability is "Not
// affected".
func Mitigations(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		return NotExposed
	}
	var parts []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if how := mitigation(string(b)); how != "" {
			parts = append(parts, e.Name()+"="+how)
		}
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// mitigation shortens one vulnerability file's text: "" for "Not
// affected", "vulnerable" for "Vulnerable…", else the mitigation's first
// clause, with spaces turned into underscores so that the summary splits
// on spaces.
func mitigation(text string) string {
	text = strings.TrimSpace(text)
	switch {
	case text == "" || strings.HasPrefix(text, "Not affected"):
		return ""
	case strings.HasPrefix(text, "Vulnerable"):
		return "vulnerable"
	}
	text = strings.TrimPrefix(text, "Mitigation: ")
	text, _, _ = strings.Cut(text, ";")
	return strings.ReplaceAll(strings.TrimSpace(text), " ", "_")
}

// Kernel describes the kernel the agent runs on.
type Kernel struct {
	// Release is its release (uname -r); Mitigations summarises its CPU
	// vulnerability mitigations (Mitigations).
	Release, Mitigations string
}

// ReadKernel describes the kernel the agent runs on, reading about 20 small
// sysfs files.
func ReadKernel() Kernel {
	return Kernel{Release: KernelRelease(), Mitigations: Mitigations(VulnerabilitiesDir)}
}

// KernelRelease returns the running kernel's release (uname -r), or "".
func KernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}
