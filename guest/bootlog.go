package guest

import (
	"errors"
	"strconv"
	"strings"
	"syscall"
)

// Milestone is a stage of a VM's boot: when its kernel logged the line that
// marks it, in seconds on the kernel's own clock (which starts late: see
// VCPUSeconds).
type Milestone struct {
	Name string  `json:"name"`
	Sec  float64 `json:"s"`
}

// MarkSetup names the milestone of a VM agent's own setup: its modules
// loaded, its disk and NIC ready (Agent.Mark).
const MarkSetup = "setup"

// bootMarks are the kernel log lines that mark a boot's stages, in order.
var bootMarks = []struct{ name, prefix string }{
	{"kernel", "Linux version "},
	{"clocksource", "clocksource: Switched to clocksource "},
	{"initramfs", "Freeing initrd memory"},
	{"init", "Run /init as init process"},
}

// BootStages names a boot's milestones in the order they come: the
// kernel's, then the agent's setup. The host's records declare the same
// names (results.BootStages; a test keeps the two equal).
func BootStages() []string {
	var out []string
	for _, m := range bootMarks {
		out = append(out, m.name)
	}
	return append(out, MarkSetup)
}

// BootMilestones returns the first time each boot stage appears in the
// kernel's log records (the /dev/kmsg format: "PRIO,SEQ,USEC,FLAGS;TEXT"),
// in the order of bootMarks; stages not found are left out.
func BootMilestones(records []string) []Milestone {
	found := map[string]float64{}
	for _, r := range records {
		head, text, ok := strings.Cut(r, ";")
		if !ok {
			continue
		}
		f := strings.Split(head, ",")
		if len(f) < 3 {
			continue
		}
		usec, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			continue
		}
		for _, m := range bootMarks {
			if _, seen := found[m.name]; !seen && strings.HasPrefix(text, m.prefix) {
				found[m.name] = float64(usec) / 1e6
			}
		}
	}
	var out []Milestone
	for _, m := range bootMarks {
		if s, ok := found[m.name]; ok {
			out = append(out, Milestone{Name: m.name, Sec: s})
		}
	}
	return out
}

// readKmsg returns the records of the kernel's log buffer without blocking
// for new ones. It reads with plain system calls: an os.File would wait
// in Go's poller for the next record instead of returning at the end.
func readKmsg() []string {
	fd, err := syscall.Open("/dev/kmsg", syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer syscall.Close(fd)
	var out []string
	buf := make([]byte, 8192)
	for len(out) < 100000 {
		n, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EPIPE) { // records overwritten meanwhile
			continue
		}
		if err != nil || n <= 0 {
			return out
		}
		line, _, _ := strings.Cut(string(buf[:n]), "\n")
		out = append(out, line)
	}
	return out
}
