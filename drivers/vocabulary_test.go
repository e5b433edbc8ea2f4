package drivers

import (
	"slices"
	"testing"

	"virtbench/guest"
	"virtbench/guest/vminit"
	"virtbench/internal/results"
)

// TestWorkloadsDeclared: every workload of the agent, and every one of its
// results, is declared to the records with the agent's meaning.
func TestWorkloadsDeclared(t *testing.T) {
	for _, w := range guest.Workloads() {
		got, ok := results.Linked().Workload(w.Name)
		if !ok || got.Disk != w.Disk || got.Baseline != (w.Name == guest.IdleWorkload) {
			t.Errorf("workload %s declared as %+v (%v)", w.Name, got, ok)
		}
		for _, m := range w.Measures {
			k := results.Linked().Kind(m.Name)
			if !results.Linked().Declared(m.Name) || k.Unit != m.Unit || k.Better != m.Better || k.Dimension != m.Dimension {
				t.Errorf("result %s of %s declared as %+v, want %+v", m.Name, w.Name, k, m)
			}
		}
	}
	if !results.Linked().BaselineWorkload(guest.IdleWorkload) || results.Linked().BaselineWorkload("cpu") {
		t.Error("the idle workload is not the only baseline workload")
	}
}

// TestProtocolWordsAgree: the host's records name a boot's stages as the
// agent reports them, in the same order, and a kernel without mitigations
// as the agent does.
func TestProtocolWordsAgree(t *testing.T) {
	if results.MitigationsNotExposed != guest.NotExposed {
		t.Errorf("results.MitigationsNotExposed %q, guest.NotExposed %q", results.MitigationsNotExposed, guest.NotExposed)
	}
	var host []string
	for _, st := range results.BootStages {
		host = append(host, st.Name)
	}
	if agent := guest.BootStages(); !slices.Equal(host, agent) {
		t.Errorf("results.BootStages %v, guest.BootStages %v", host, agent)
	}
	// A restored VM's agent steps become phases of its start.
	for _, step := range []string{vminit.StepWake, vminit.StepConsole, vminit.StepVMSetup} {
		if _, ok := results.PhaseByName(step); !ok {
			t.Errorf("the restored VM's step %q is not a declared phase (results.Phases)", step)
		}
	}
}
