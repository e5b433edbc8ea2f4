package guest

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// VCPUSeconds returns how long the virtual CPU has run since it was reset,
// from its time-stamp counter at the kernel's TSC frequency, or 0 where
// either is unknown (not amd64, no "cpu MHz" in /proc/cpuinfo).
//
// QEMU starts a VM's TSC at 0: under TCG it counts host ticks from the
// moment the VM starts running, under KVM from the vCPU's reset. So inside
// a VM this is the guest's lifetime, firmware and early kernel included.
// The kernel's own uptime misses part of that: until a timer interrupt
// ticks and a real clocksource takes over, its clock is jiffies and stands
// still (measured here: ~0.4 s of a 1.9 s TCG boot). Outside a VM the TSC
// counts from the host's boot and the value means nothing as a duration.
func VCPUSeconds() float64 {
	mhz := CPUMHz()
	if mhz <= 0 {
		return 0
	}
	return float64(rdtsc()) / (mhz * 1e6)
}

// CPUMHz returns the first "cpu MHz" of /proc/cpuinfo, which on x86 is the
// TSC frequency the kernel uses, or 0.
func CPUMHz() float64 {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "cpu MHz" {
			mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0
			}
			return mhz
		}
	}
	return 0
}
