package cgroups

import (
	"io/fs"
	"slices"
	"testing"
	"testing/fstest"
)

// vanishing is a cgroup tree in which the directory gone is listed by its
// parent but removed before it is read, as a finished unit's cgroup is.
type vanishing struct {
	fstest.MapFS
	gone string
}

func (v vanishing) ReadDir(name string) ([]fs.DirEntry, error) {
	if name == v.gone {
		return nil, &fs.PathError{Op: "readdirent", Path: name, Err: fs.ErrNotExist}
	}
	return v.MapFS.ReadDir(name)
}

func TestTreeProcs(t *testing.T) {
	tree := fstest.MapFS{
		"cgroup.procs":                           {Data: []byte("10\n")},
		"init.scope/cgroup.procs":                {Data: []byte("11\n")},
		"system.slice/a.service/cgroup.procs":    {Data: []byte("12\n13\n")},
		"system.slice/done.service/cgroup.procs": {Data: []byte("14\n")},
	}
	for _, tc := range []struct {
		name string
		fsys fs.FS
		want []int32
	}{
		{"whole", tree, []int32{10, 11, 12, 13, 14}},
		{"removed while walking", vanishing{tree, "system.slice/done.service"}, []int32{10, 11, 12, 13}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := treeProcs(tc.fsys)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := treeProcs(vanishing{tree, "."}); err == nil {
		t.Error("a missing root: no error")
	}
}
