// Command virtbench-guest is the agent that runs inside every virtbench
// instance. Usage:
//
//	virtbench-guest WORKLOAD [flags]
//
// It speaks the line protocol described in package guest on stdout, each
// line marked with the instance's nonce (guest.Nonce: $VIRTBENCH_NONCE, or
// in a VM virtbench.nonce= on the kernel command line or the restored
// VM's WORKLOAD line), which the host checks. A bad
// workload name or flag is an ERROR line and exit status 2. SIGTERM or SIGINT
// stops it with status 0.
//
// Started by drivers/container it first sets up the container (package
// containerinit). As PID 1 of a VM (drivers/qemu) it first sets up the
// guest (package vminit), takes its arguments from the kernel command line
// (after "--") or, in a VM restored from a snapshot, from the console
// (vminit.AwaitWorkload), stops when STOP is written on the console, and powers the
// guest off instead of exiting; in a full OS guest it hands over to the
// guest's init and comes back as a service (VIRTBENCH_SERVICE=1) that
// takes its arguments from virtbench.args= on the kernel command line.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"virtbench/guest"
	"virtbench/guest/containerinit"
	"virtbench/guest/vminit"
)

func main() {
	if args, ok := vminit.ServiceArgs(); ok {
		// The service of a full OS guest (the debian image profile).
		code := run(guest.NewVMAgent(os.Stdout, vminit.Nonce()), args, func() error { return nil }, vminit.WatchConsole(os.Stdin))
		fmt.Fprintf(os.Stderr, "virtbench-guest: powering off (status %d)\n", code)
		if err := vminit.ServicePowerOff(); err != nil {
			fmt.Fprintln(os.Stderr, "virtbench-guest: power off:", err)
		}
		os.Exit(code)
	}
	if !containerinit.IsInit() && vminit.IsInit() {
		args, nonce, setup := os.Args[1:], guest.Nonce(""), vminit.Setup
		var console io.Reader = os.Stdin
		restored := vminit.FromSnapshot()
		var (
			steps  []guest.Milestone
			kernel guest.Kernel
		)
		if restored {
			// A snapshot template: the arguments and the nonce come on
			// the console once the VM is restored. What every clone
			// shares is read before the save: the kernel is the
			// template's.
			kernel = guest.ReadKernel()
			w, err := vminit.AwaitWorkload(os.Stdin, os.Stdout, func(name string) {
				steps = append(steps, guest.Milestone{Name: name, Sec: guest.Monotonic()})
			})
			args, nonce, setup = w.Args, w.Nonce, func() error { return err }
			console = io.MultiReader(bytes.NewReader(w.Rest), os.Stdin)
		} else {
			nonce = vminit.Nonce()
		}
		a := guest.NewVMAgent(os.Stdout, nonce)
		if restored {
			a.Restored(kernel, steps)
		}
		vmSetup := setup
		setup = func() error {
			err := vmSetup()
			a.Mark(guest.MarkSetup)
			return err
		}
		code := run(a, args, setup, vminit.WatchConsole(console))
		fmt.Fprintf(os.Stderr, "virtbench-guest: powering off (status %d)\n", code)
		if err := vminit.PowerOff(); err != nil {
			fmt.Fprintln(os.Stderr, "virtbench-guest: power off:", err)
		}
		select {} // PID 1 must not exit
	}
	nonce := guest.Nonce(os.Getenv(guest.NonceEnv))
	// The workload (and any program it runs) does not inherit the nonce.
	os.Unsetenv(guest.NonceEnv)
	a := guest.NewAgent(os.Stdout, nonce)
	setup := func() error { return nil }
	if containerinit.IsInit() {
		setup = func() error { return containerinit.Setup(a.Step) }
	}
	os.Exit(run(a, os.Args[1:], setup, nil))
}

// run sets up the instance, then runs the workload, reporting through a,
// until it is stopped by a signal or, when watch is not nil, by what watch
// watches. Errors go to stderr quoted, as the ERROR line carries them: an
// argument the error echoes cannot put a line of its own on the console.
func run(a *guest.Agent, args []string, setup func() error, watch func(context.Context) (context.Context, context.CancelFunc)) int {
	if err := a.CheckNonce(); err != nil {
		fmt.Fprintf(os.Stderr, "virtbench-guest: %q\n", err.Error())
		return 2
	}
	if err := setup(); err != nil {
		a.Error(err)
		fmt.Fprintf(os.Stderr, "virtbench-guest: %q\n", err.Error())
		return 1
	}
	w, work, err := guest.Prepare(args)
	if err != nil {
		a.Error(err)
		fmt.Fprintf(os.Stderr, "virtbench-guest: %q\n", err.Error())
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if watch != nil {
		var cancel context.CancelFunc
		ctx, cancel = watch(ctx)
		defer cancel()
	}
	if err := guest.Run(ctx, a, w, work); err != nil {
		fmt.Fprintf(os.Stderr, "virtbench-guest: %q\n", err.Error())
		return 1
	}
	return 0
}
