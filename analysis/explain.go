package analysis

import (
	"fmt"
	"strings"

	"virtbench/internal/results"
)

// explainFaster says which differences in the setup could explain an
// isolated instance beating native beyond the confidence intervals: the
// accelerator (under TCG a guest's system call never enters the host
// kernel), a kernel of its own, and the CPU vulnerability mitigations that
// kernel applies where the host's differ. role and labels are the
// variant's, host the run's provenance.
func explainFaster(r Ratio, role results.Role, labels map[string]string, host results.Provenance, voc results.Vocabulary) string {
	var why []string
	if role.Emulated() {
		why = append(why, "it runs under TCG: the guest's system calls and page-table switches happen inside QEMU's translated code and never enter the host kernel, so none of the host's mitigations apply to them")
	}
	if gk := labels[results.LabelGuestKernel]; gk != "" && gk != host.Kernel {
		why = append(why, fmt.Sprintf("its kernel is %s, the host's %s", gk, host.Kernel))
	}
	if gm, ok := labels[results.LabelMitigations]; ok && host.Mitigations != "" && gm != host.Mitigations {
		if diff := mitigationDiff(host.Mitigations, gm); diff != "" {
			why = append(why, diff)
		}
	}
	if role.Platform != "" {
		why = append(why, "its system calls are served by gVisor's Sentry in user space (platform "+role.Platform+"), not by the host kernel")
		if w, ok := voc.Workload(r.Workload); ok && w.Disk {
			why = append(why, "the Sentry keeps file data in its own memory: it takes fadvise(DONTNEED), with which the fileio workload drops the file before reading it back, as a hint it need not follow, and accepts O_DIRECT (fio's direct I/O) without bypassing that memory, so its reads may never reach the disk")
		}
	}
	why = append(why, storageNote(role, voc, r.Workload)...)
	if len(why) == 0 {
		return fmt.Sprintf("%s runs on the host's own kernel with the same mitigations: look for a difference in placement (cgroup, CPU, namespace) or in the host's load between the two", r.Variant)
	}
	return strings.Join(why, "; ")
}

// storageNote says, for a workload that reads its own files (Files),
// that a FUSE storage driver served them (role.Storage, as a container
// engine reports its storage driver): its daemon answers from its own
// page cache, so direct I/O may never reach the disk, and every read
// crosses to user space and back. It is empty otherwise.
func storageNote(role results.Role, voc results.Vocabulary, workload string) []string {
	w, ok := voc.Workload(workload)
	if !ok || !(w.Files || w.Disk) || !strings.Contains(role.Storage, "fuse") {
		return nil
	}
	return []string{fmt.Sprintf("its files were served by the engine's %s storage driver: a FUSE daemon in user space answers each file operation, from its own page cache, so direct I/O (fio's) may never reach the disk while every read (nginx's sendfile) crosses to the daemon and back; the driver's scratch=volume binds a host directory past it", role.Storage)}
}

// mitigationDiff says which mitigations the host applies that the guest
// does not, and the reverse, from two guest.Mitigations summaries.
func mitigationDiff(host, guestMit string) string {
	if guestMit == results.MitigationsNotExposed {
		return "its kernel does not expose its mitigations (the host applies " + strings.ReplaceAll(host, " ", ", ") + ")"
	}
	hm, gm := fieldsMap(host), fieldsMap(guestMit)
	var hostOnly, guestOnly []string
	for _, f := range strings.Fields(host) {
		k, _, _ := strings.Cut(f, "=")
		if gm[k] != hm[k] {
			hostOnly = append(hostOnly, f)
		}
	}
	for _, f := range strings.Fields(guestMit) {
		k, _, _ := strings.Cut(f, "=")
		if hm[k] != gm[k] {
			guestOnly = append(guestOnly, f)
		}
	}
	var parts []string
	if len(hostOnly) > 0 {
		parts = append(parts, "the host kernel applies "+strings.Join(hostOnly, ", ")+" where the guest kernel does not")
	}
	if len(guestOnly) > 0 {
		parts = append(parts, "the guest kernel applies "+strings.Join(guestOnly, ", "))
	}
	return strings.Join(parts, "; ")
}

func fieldsMap(summary string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(summary) {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}
