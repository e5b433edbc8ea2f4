package results

import (
	"strings"
	"testing"
)

// TestDecodeSamplesChecks: impossible values and the samples of two runs
// are refused with the line that holds them (the repros: a startup of
// -5 s, one of 1e308, two runs' samples concatenated).
func TestDecodeSamplesChecks(t *testing.T) {
	line := func(metric, unit, value, run string) string {
		return `{"driver":"native","workload":"idle","instances":1,"metric":"` + metric + `","unit":"` + unit + `","value":` + value + `,"run":"` + run + `"}` + "\n"
	}
	ok := line("startup", "sec", "0.002", "a")
	tests := []struct {
		name, in, wantErr string
	}{
		{"ordinary", ok + line("pss", "B", "1048576", "a"), ""},
		{"a MemAvailable drop below zero is noise, not impossible", ok + line("host_mem_drop", "B", "-4096", "a"), ""},
		{"a failed sample's value is not checked", ok + `{"metric":"startup","unit":"sec","value":-1,"error":"start: boom","run":"a"}` + "\n", ""},
		{"samples without a run mark (older runs)", line("startup", "sec", "1", ""), ""},
		{"negative duration", ok + line("startup", "sec", "-5", "a"), "x:2: startup: a duration cannot be negative (-5 sec)"},
		{"negative size", line("pss", "B", "-1", "a"), "x:1: pss: a size cannot be negative"},
		{"beyond any measurement", ok + ok + line("startup", "sec", "1e308", "a"), "x:3: startup: value 1e+308 is beyond any measurement"},
		{"wrong unit", line("startup", "B", "1", "a"), `x:1: startup: unit "B", declared "sec"`},
		{"two runs", ok + ok + line("startup", "sec", "1", "b"), "x:3: a sample of run b, but line 1 began run a: the samples of two runs were joined"},
	}
	for _, tt := range tests {
		got, err := DecodeSamples(strings.NewReader(tt.in), "x")
		if tt.wantErr == "" {
			if err != nil || len(got) == 0 {
				t.Errorf("%s: DecodeSamples = %d samples, %v", tt.name, len(got), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: DecodeSamples error = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}
