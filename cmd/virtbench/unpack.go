package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/dustin/go-humanize"

	"virtbench/internal/runarchive"
	"virtbench/scenarios"
)

// cmdUnpack unpacks a run directory's archive that a campaign fetched
// back from a host: the controller's only way in for what a host sends
// (deploy/ansible/fetch.yml).
func cmdUnpack(_ context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("unpack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lim := runarchive.DefaultLimits
	fs.Func("max-bytes", fmt.Sprintf("the most the archive may unpack to (default %s)", humanize.IBytes(uint64(lim.Bytes))), func(v string) error {
		n, err := scenarios.ParseSize(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("want a size such as 2GiB, got %q", v)
		}
		lim.Bytes = n
		return nil
	})
	fs.IntVar(&lim.Files, "max-files", lim.Files, "the most files and directories it may hold")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: virtbench unpack [--max-bytes SIZE] [--max-files N] ARCHIVE DIR\n\n"+
			"Unpacks ARCHIVE (a gzip-compressed tar of a run directory, \"run/\", as a campaign\n"+
			"fetches it back from a host) into DIR/run. The host may be compromised: only\n"+
			"directories and regular files come out (modes 0755 and 0644), nothing outside\n"+
			"DIR/run, no more than the limits; a link, a device, a FIFO, a path out of run/ or\n"+
			"an archive beyond a limit is refused, naming the entry, and nothing is kept.\n\n")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitUsage, err
	}
	if len(pos) != 2 {
		return exitUsage, usagef("want ARCHIVE and DIR, got %d arguments", len(pos))
	}
	if lim.Files <= 0 {
		return exitUsage, usagef("--max-files must be positive")
	}
	if err := runarchive.UnpackFile(pos[0], pos[1], "run", lim); err != nil {
		return exitFailures, err
	}
	return exitOK, nil
}
