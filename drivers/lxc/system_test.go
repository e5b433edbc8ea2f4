package lxc

import "testing"

func TestSystemdQuote(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"idle", `"idle"`},
		{`a "b" \c`, `"a \"b\" \\c"`},
		{"50% of $HOME", `"50%% of $$HOME"`},
		{"bad\nVIRTBENCH READY {}", `"bad\x0aVIRTBENCH READY {}"`},
		{"", `""`},
	} {
		if got := systemdQuote(tt.in); got != tt.want {
			t.Errorf("systemdQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
