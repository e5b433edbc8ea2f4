package scenarios

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"testing"

	"virtbench/drivers"
)

var update = flag.Bool("update", false, "rewrite the option list in README.md")

// optionList is the README's list of driver options, one line each.
func optionList() []byte {
	var b bytes.Buffer
	for _, info := range append(drivers.Drivers(), Host) {
		for _, o := range info.Options {
			fmt.Fprintf(&b, "- `%s.%s`: %s\n", info.Name, o.Name, o.Usage())
		}
	}
	return b.Bytes()
}

// TestREADMEOptions checks that README.md lists every driver option as
// the drivers declare it.
func TestREADMEOptions(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	begin := []byte("-update rewrites it -->\n")
	end := []byte("<!-- end of options -->")
	i, j := bytes.Index(readme, begin), bytes.Index(readme, end)
	if i < 0 || j < i {
		t.Fatal("README.md lacks the option list's markers")
	}
	i += len(begin)
	want := optionList()
	if *update {
		out := append(append(append([]byte{}, readme[:i]...), want...), readme[j:]...)
		if err := os.WriteFile("README.md", out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got := readme[i:j]; !bytes.Equal(got, want) {
		t.Errorf("README.md's option list differs from the drivers' declarations (go test ./scenarios -update rewrites it):\n%s\nwant:\n%s", got, want)
	}
}
