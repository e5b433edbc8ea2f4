package guest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMitigations(t *testing.T) {
	write := func(dir string, files map[string]string) {
		for name, text := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	host := t.TempDir() // as read off this project's development host
	write(host, map[string]string{
		"meltdown":          "Mitigation: PTI",
		"spectre_v2":        "Mitigation: Retpolines; STIBP: disabled; RSB filling; PBRSB-eIBRS: Not affected; BHI: Not affected",
		"spectre_v1":        "Mitigation: usercopy/swapgs barriers and __user pointer sanitization",
		"spec_store_bypass": "Vulnerable",
		"mds":               "Not affected",
		"l1tf":              "Not affected",
	})
	clean := t.TempDir()
	write(clean, map[string]string{"meltdown": "Not affected", "mds": "Not affected"})
	for _, tc := range []struct{ dir, want string }{
		{host, "meltdown=PTI spec_store_bypass=vulnerable spectre_v1=usercopy/swapgs_barriers_and___user_pointer_sanitization spectre_v2=Retpolines"},
		{clean, "none"},
		{filepath.Join(host, "missing"), NotExposed},
	} {
		if got := Mitigations(tc.dir); got != tc.want {
			t.Errorf("Mitigations(%s) =\n%q\nwant\n%q", tc.dir, got, tc.want)
		}
	}
}
