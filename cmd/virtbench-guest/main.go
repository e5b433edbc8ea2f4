// Command virtbench-guest is the agent that runs inside every virtbench
// instance. Usage:
//
//	virtbench-guest WORKLOAD [flags]
//
// It speaks the line protocol described in package guest on stdout. Started
// by drivers/container, it first sets up the container (package
// containerinit). A bad
// workload name or flag is an ERROR line and exit status 2. SIGTERM or SIGINT
// stops it with status 0.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"virtbench/guest"
	"virtbench/guest/containerinit"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	a := guest.NewAgent(os.Stdout)
	if containerinit.IsInit() {
		if err := containerinit.Setup(); err != nil {
			a.Error(err)
			fmt.Fprintln(os.Stderr, "virtbench-guest:", err)
			return 1
		}
	}
	w, work, err := guest.Prepare(args)
	if err != nil {
		a.Error(err)
		fmt.Fprintln(os.Stderr, "virtbench-guest:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := guest.Run(ctx, a, w, work); err != nil {
		fmt.Fprintln(os.Stderr, "virtbench-guest:", err)
		return 1
	}
	return 0
}
