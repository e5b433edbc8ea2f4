package container_test

import (
	"os"
	"path/filepath"
	"strings"

	"virtbench/drivers"
)

// cgroupLeaks returns the cgroup directories left for env's run.
func cgroupLeaks(env drivers.Env) []string {
	var left []string
	run := "virtbench." + filepath.Base(env.StateDir)
	filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return filepath.SkipDir
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), "virtbench.") {
			if d.Name() == run {
				left = append(left, p)
			}
			return filepath.SkipDir
		}
		return nil
	})
	return left
}
