package required

import "testing"

func TestListed(t *testing.T) {
	tests := []struct {
		env, name string
		want      bool
	}{
		{"", "runc", false},
		{"native,container,runc", "runc", true},
		{"native,container,runc", "run", false},
		{"runc", "crun", false},
	}
	for _, tt := range tests {
		t.Setenv(Env, tt.env)
		if got := Listed(tt.name); got != tt.want {
			t.Errorf("%s=%q: Listed(%q) = %v, want %v", Env, tt.env, tt.name, got, tt.want)
		}
	}
}
