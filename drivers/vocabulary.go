package drivers

import (
	"slices"

	"virtbench/guest"
	"virtbench/internal/results"
)

// The agent's workloads are declared to the run's records once, when the
// drivers' registry loads: every program that runs or reports a run links
// it, and the reports read a workload's meaning (its results' kinds, the
// idle baseline, disk use) from results without the agent.
func init() {
	for _, w := range guest.Workloads() {
		results.DeclareWorkload(results.Workload{Name: w.Name, Summary: w.Summary, Baseline: w.Name == guest.IdleWorkload, Disk: w.Disk, Files: w.Disk || w.Files, Tools: len(w.Tools) > 0, Measures: append(slices.Clip(w.Measures), w.HostMeasures...)})
	}
}

// LabelImage is the key of ImageLabel.
const LabelImage = "image"

// ImageLabel says which image an instance booted, where a driver offers
// the agent alone (minimal) and a full OS booting systemd (debian): the
// label that marks the full-OS side of a comparison (results.Role's
// FullOS). Every driver with such an option declares this one label.
var ImageLabel = results.Label{Key: LabelImage, Role: results.LabelImage, Doc: "the guest image: minimal (the agent is init), debian (a full OS) or vm_image (the user's own disk image, a full OS)", FullOS: []string{"debian", ImageVMImage}}

// ImageVMImage is the image label of a VM booted from the user's own disk
// image (qemu's vm_image): a full OS.
const ImageVMImage = "vm_image"
