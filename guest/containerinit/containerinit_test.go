package containerinit

import (
	"strings"
	"testing"
)

func TestConfigRoundTrip(t *testing.T) {
	for _, c := range []Config{
		{Lower: "/a:/b", Upper: "/i/upper", Work: "/i/work", Merged: "/i/merged", Hostname: "ct-1"},
		{Lower: "/a", Upper: "/u", Work: "/w", Merged: "/m", Hostname: "h=1", UserNS: true},
		{},
	} {
		b, err := c.Encode()
		if err != nil {
			t.Fatalf("Encode(%+v): %v", c, err)
		}
		got, err := DecodeConfig(b)
		if err != nil {
			t.Fatalf("DecodeConfig(%q): %v", b, err)
		}
		if got != c {
			t.Errorf("round trip of %+v gave %+v", c, got)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := (Config{Hostname: "a\nb"}).Encode(); err == nil || !strings.Contains(err.Error(), "hostname") {
		t.Errorf("Encode with a newline in the hostname: %v, want an error naming it", err)
	}
	for _, in := range []string{"lower\n", "colour=red\n"} {
		if _, err := DecodeConfig([]byte(in)); err == nil {
			t.Errorf("DecodeConfig(%q) succeeded", in)
		}
	}
}
