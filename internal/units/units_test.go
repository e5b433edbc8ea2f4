package units

import "testing"

func TestFormat(t *testing.T) {
	tests := []struct {
		v    float64
		unit string
		want string
	}{
		{0.0021, "sec", "2.100ms"},
		{3.1, "sec", "3.100s"},
		{5.5 * (1 << 20), "B", "5.500MiB"},
		{1.2e9, "B/s", "1.118GiB/s"},
		{6012, "op/s", "6.012k op/s"},
		{1.5e-6, "sec/op", "1.500µs/op"},
		{0.0484, "cores", "0.0484 cores"},
		{6, "tasks", "6 tasks"},
	}
	for _, tt := range tests {
		if got := Format(tt.v, tt.unit); got != tt.want {
			t.Errorf("Format(%v, %q) = %q, want %q", tt.v, tt.unit, got, tt.want)
		}
	}
}
