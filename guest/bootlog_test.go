package guest

import (
	"reflect"
	"testing"
)

// TestBootMilestones reads kernel log records as /dev/kmsg gives them (the
// texts are Debian 6.1's); the first of repeated lines counts.
func TestBootMilestones(t *testing.T) {
	records := []string{
		"5,0,0,-;Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0) #1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1",
		"6,1,0,-;Command line: console=ttyS0 quiet panic=-1",
		"6,120,51000,-;clocksource: Switched to clocksource kvm-clock",
		"6,121,52000,-;clocksource: Switched to clocksource tsc",
		"6,200,480123,-;Trying to unpack rootfs image as initramfs...",
		"6,210,910500,-;Freeing initrd memory: 12345K",
		"6,300,1150000,-;Run /init as init process",
		"not a record",
		"6,301,x,-;Run /init as init process",
	}
	want := []Milestone{{"kernel", 0}, {"clocksource", 0.051}, {"initramfs", 0.9105}, {"init", 1.15}}
	if got := BootMilestones(records); !reflect.DeepEqual(got, want) {
		t.Errorf("BootMilestones = %+v, want %+v", got, want)
	}
	if got := BootMilestones(nil); got != nil {
		t.Errorf("no records: %+v", got)
	}
}
