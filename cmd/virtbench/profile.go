package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfiles starts a CPU profile into cpuFile and arranges a heap
// profile into memFile (either may be ""); the returned function stops the
// CPU profile and writes the heap profile. They are for finding where
// virtbench's own time and memory go (go tool pprof FILE). Both files are
// created now, and must be new, so that a bad or taken path fails before
// the run rather than after it, and nothing of the user's is overwritten;
// a profile that cannot be written removes its file.
func startProfiles(cpuFile, memFile string) (stop func() error, err error) {
	var cpu, mem *os.File
	if cpuFile != "" {
		if cpu, err = create("--cpuprofile", cpuFile); err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			os.Remove(cpuFile)
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	if memFile != "" {
		if mem, err = create("--memprofile", memFile); err != nil {
			if cpu != nil {
				pprof.StopCPUProfile()
				cpu.Close()
				os.Remove(cpuFile)
			}
			return nil, err
		}
	}
	return func() error {
		var errs []error
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				errs = append(errs, fmt.Errorf("--cpuprofile: %w", err))
			}
		}
		if mem != nil {
			runtime.GC() // up-to-date statistics
			if err := errors.Join(pprof.Lookup("allocs").WriteTo(mem, 0), mem.Close()); err != nil {
				os.Remove(memFile)
				errs = append(errs, fmt.Errorf("--memprofile: %w", err))
			}
		}
		return errors.Join(errs...)
	}, nil
}

// create creates a new file for the profile flag, refusing one that exists.
func create(flag, path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return f, nil
}
