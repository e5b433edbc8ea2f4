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
		return `{"variant":"native","workload":"idle","instances":1,"metric":"` + metric + `","unit":"` + unit + `","value":` + value + `,"run":"` + run + `"}` + "\n"
	}
	ok := line("startup", "sec", "0.002", "a")
	tests := []struct {
		name, in, wantErr string
	}{
		{"ordinary", ok + line("pss", "B", "1048576", "a"), ""},
		{"a MemAvailable drop below zero is noise, not impossible", ok + line("host_mem_drop", "B", "-4096", "a"), ""},
		{"a failed sample's value is not checked", ok + `{"variant":"native","metric":"startup","unit":"sec","value":-1,"error":"start: boom","run":"a"}` + "\n", ""},
		{"samples without a run mark (older runs)", line("startup", "sec", "1", "") + line("startup", "sec", "1", ""), ""},
		{"marked after unmarked", line("startup", "sec", "1", "") + ok, "x:2: a sample of run a, but line 1 began no marked run"},
		{"unmarked after marked", ok + line("startup", "sec", "1", ""), "x:2: a sample of no marked run, but line 1 began run a"},
		{"a start below a microsecond", line("startup", "sec", "1e-9", "a"), "x:1: startup: 1e-09 sec is below what can be measured"},
		{"a PSS below a page", ok + line("pss", "B", "0.05", "a"), "x:2: pss: 0.05 B is below what can be measured (at least 4096 B)"},
		{"a variant with a terminal escape", strings.Replace(ok, `"native"`, `"nat\u001b]0;x\u0007"`, 1), "is not a variant's name"},
		{"a metric with a newline", line(`zz\nBenchmarkX`, "sec", "1", "a"), "is not a metric's name"},
		{"a label with a control character", `{"variant":"qemu","metric":"startup","unit":"sec","value":1,"labels":{"guest_kernel":"6.1\u001b[2J"}}` + "\n", "label guest_kernel: a value with a control character"},
		{"not JSON", ok + "{\"driver\": root:SECRET\n" + ok, "x:2: not valid JSON (at byte 12)"},
		{"negative duration", ok + line("startup", "sec", "-5", "a"), "x:2: startup: a duration cannot be negative (-5 sec)"},
		{"negative size", line("pss", "B", "-1", "a"), "x:1: pss: a size cannot be negative"},
		{"beyond any measurement", ok + ok + line("startup", "sec", "1e308", "a"), "x:3: startup: value 1e+308 is beyond any measurement"},
		{"wrong unit", line("startup", "B", "1", "a"), `x:1: startup: unit "B", declared "sec"`},
		{"two runs", ok + ok + line("startup", "sec", "1", "b"), "x:3: a sample of run b, but line 1 began run a: the samples of two runs were joined"},
	}
	for _, tt := range tests {
		got, err := DecodeSamples(strings.NewReader(tt.in), "x", Linked())
		if tt.wantErr == "" {
			if err != nil || len(got) == 0 {
				t.Errorf("%s: DecodeSamples = %d samples, %v", tt.name, len(got), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: DecodeSamples error = %v, want %q and nothing of the line's content", tt.name, err, tt.wantErr)
		}
	}
}
