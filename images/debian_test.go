package images

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDebianMirror: the mirror comes from the host's apt, in either form
// of its sources, unless the environment names one.
func TestDebianMirror(t *testing.T) {
	write := func(t *testing.T, dir, name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"nothing", nil, DefaultDebianMirror},
		{"one-line", map[string]string{"sources.list": "# comment\ndeb-src http://src.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib\n"}, "http://mirror.example/debian"},
		{"deb822", map[string]string{"sources.list.d/debian.sources": "Types: deb\nURIs: http://proxy.example:3142/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://proxy.example:3142/debian-security\nSuites: bookworm-security\nComponents: main\n"}, "http://proxy.example:3142/debian"},
		{"other suites and disabled stanzas skipped", map[string]string{
			"sources.list":                  "deb http://old.example/debian bullseye main\n",
			"sources.list.d/a.sources":      "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n",
			"sources.list.d/b.list":         "deb http://nonfree.example/debian bookworm non-free\n",
			"sources.list.d/debian.sources": "Types: deb\nURIs: http://on.example/debian\nSuites: bookworm\nComponents: main\n",
		}, "http://on.example/debian"},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		for name, text := range tt.files {
			write(t, dir, name, text)
		}
		t.Setenv(MirrorEnv, "")
		if got := DebianMirror(dir); got != tt.want {
			t.Errorf("%s: DebianMirror = %q, want %q", tt.name, got, tt.want)
		}
	}
	t.Setenv(MirrorEnv, "http://mine.example/debian")
	if got := DebianMirror(t.TempDir()); got != "http://mine.example/debian" {
		t.Errorf("with %s set: DebianMirror = %q", MirrorEnv, got)
	}
}
