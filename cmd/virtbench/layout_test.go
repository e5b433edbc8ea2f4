package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestLayout: the README's layout table is true: every package imports
// only packages of its own row or of rows below it (a package in no row,
// a leaf such as internal/ksm, is not ranked); and the analysis and its
// renderers link nothing of the drivers or the agent.
func TestLayout(t *testing.T) {
	deps, err := exec.Command("go", "list", "-deps", "virtbench/analysis", "virtbench/reports").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, d := range strings.Fields(string(deps)) {
		if strings.HasPrefix(d, "virtbench/drivers") || strings.HasPrefix(d, "virtbench/guest") || strings.HasPrefix(d, "virtbench/bench") {
			t.Errorf("the analysis or the reports link %s", d)
		}
	}
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(b), "\n## Layout\n")
	table, _, _ = strings.Cut(table, "\n\nSee ")
	tick := regexp.MustCompile("`([a-z0-9/_-]+)`")
	rank := map[string]int{} // a row's path → its row
	row := 0
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first, _, _ := strings.Cut(line[2:], " |")
		var base string
		for i, m := range tick.FindAllStringSubmatch(first, -1) {
			p := m[1]
			if i == 0 {
				base = p[:strings.LastIndex(p, "/")+1]
			} else if !strings.Contains(p, "/") {
				p = base + p // `drivers/native`, `container`: drivers/container
			}
			rank[p] = row
		}
		row++
	}
	if row < 20 {
		t.Fatalf("read %d rows of the layout table, want the whole table", row)
	}
	rankOf := func(pkg string) (int, bool) {
		pkg = strings.TrimPrefix(pkg, "virtbench/")
		best, r := "", 0
		for p, n := range rank {
			if (pkg == p || strings.HasPrefix(pkg, p+"/")) && len(p) > len(best) {
				best, r = p, n
			}
		}
		return r, best != ""
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "virtbench/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		from, ok := rankOf(f[0])
		if !ok {
			continue
		}
		for _, imp := range f[1:] {
			if to, ok := rankOf(imp); ok && strings.HasPrefix(imp, "virtbench/") && to < from {
				t.Errorf("%s imports %s, a row above it in the README's layout table", f[0], imp)
			}
		}
	}
}
