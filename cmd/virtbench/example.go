package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"virtbench/images"
)

// exampleTag is the name the example image has in its archive.
const exampleTag = "virtbench-example/nginx:latest"

// cmdExampleImage writes the example service's image (images.ExampleImage)
// as a docker-archive, for scenarios/service.yaml and the user's own
// trials of a service.
func cmdExampleImage(_ context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("example-image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	oci := fs.String("oci", "", "also write the image as an OCI layout in this directory (tagged latest)")
	vm := fs.String("vm", "", "also write the example VM disk image (raw: Debian with cloud-init and nginx, its own bootloader and kernel; made once with debootstrap, minutes) to this `FILE`, for qemu's vm_image")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: virtbench example-image [--oci DIR] [--vm FILE] FILE\n\nWrites an nginx image, made from the host's nginx (Debian's nginx-light)\nand its libraries, as a docker-archive at FILE: the service that\nscenarios/service.yaml measures in every driver. It serves / and\n/healthz on port %d.\n\n", images.ExamplePort)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitUsage, err
	}
	if len(pos) != 1 {
		return exitUsage, usagef("example-image takes one FILE")
	}
	tmp, err := os.MkdirTemp("", "virtbench-example-")
	if err != nil {
		return exitFailures, err
	}
	defer os.RemoveAll(tmp)
	img, err := images.ExampleImage(tmp, images.ExamplePort)
	if err != nil {
		return exitFailures, err
	}
	if err := images.WriteDockerArchive(pos[0], exampleTag, img); err != nil {
		return exitFailures, fmt.Errorf("example-image: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s (docker-archive, %s)\n", pos[0], exampleTag)
	if *oci != "" {
		if err := images.WriteOCILayout(*oci, "latest", img); err != nil {
			return exitFailures, fmt.Errorf("example-image: %w", err)
		}
		fmt.Fprintf(stdout, "wrote %s (OCI layout, tag latest)\n", *oci)
	}
	if *vm != "" {
		disk, err := images.BuildVMImage(cacheDir())
		if err != nil {
			return exitFailures, fmt.Errorf("example-image: %w", err)
		}
		if err := images.CopySparse(disk, *vm); err != nil {
			return exitFailures, fmt.Errorf("example-image: %w", err)
		}
		fmt.Fprintf(stdout, "wrote %s (raw VM disk image, for qemu's vm_image with machine=pc or q35)\n", *vm)
	}
	return 0, nil
}
