package state

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shirou/gopsutil/v4/process"
)

// TestParseStat parses /proc/PID/stat files saved on Linux 6.x: a process
// whose command name holds ") " and " (", and a zombie.
func TestParseStat(t *testing.T) {
	tests := []struct {
		file string
		want Stat
	}{
		{"stat-paren", Stat{State: 'S', PPid: 31998, Start: 81481, Threads: 1}},
		{"stat-zombie", Stat{State: 'Z', PPid: 32005, Start: 81561, STime: 1, Threads: 1}},
	}
	for _, tt := range tests {
		b, err := os.ReadFile(filepath.Join("testdata", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseStat(b)
		if err != nil || got != tt.want {
			t.Errorf("%s: ParseStat = %+v, %v; want %+v", tt.file, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "12 (x", "12 (x) S 1 2", "12 (x) S notapid 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"} {
		if st, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("ParseStat(%q) = %+v, want an error", bad, st)
		}
	}
}

func TestReadStatSelf(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil || st.PPid != os.Getppid() || st.Start == 0 || st.State == 'Z' {
		t.Errorf("ReadStat(self) = %+v, %v; want our parent %d, a start time, not a zombie", st, err, os.Getppid())
	}
}

// BenchmarkReadStat is the cost of one read of /proc/PID/stat, which the
// density sampler pays per instance and sweep.
func BenchmarkReadStat(b *testing.B) {
	for b.Loop() {
		if _, err := ReadStat(os.Getpid()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGopsutilTimesThreads is what gopsutil would cost for what
// ReadStat gives the sampler (CPU times and threads): the reason ReadStat
// exists.
func BenchmarkGopsutilTimesThreads(b *testing.B) {
	for b.Loop() {
		p := &process.Process{Pid: int32(os.Getpid())}
		if _, err := p.Times(); err != nil {
			b.Fatal(err)
		}
		if _, err := p.NumThreads(); err != nil {
			b.Fatal(err)
		}
	}
}
