package drivers

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"virtbench/internal/results"
)

// Env is what every driver is built with.
type Env struct {
	// Agent is the host path of the static virtbench-guest binary.
	Agent string
	// StateDir is a private directory (0700) for the run's instances; a
	// driver creates one subdirectory per instance and removes it on Stop.
	StateDir string
	// CacheDir holds images built once and reused across runs.
	CacheDir string
	// Options are driver-specific settings ("accel" → "tcg"), from a
	// scenario or the command line.
	Options map[string]string
}

// Factory builds a driver for env.
type Factory func(env Env) (Driver, error)

// Info describes a registered driver.
type Info struct {
	Name string
	// Virtualization says, for reports and teaching, what kind of
	// virtualization the driver is (e.g. "none: a plain process, the
	// baseline", "OS-level: …", "VM: …").
	Virtualization string
	// Class is the kind of isolation the driver stands for; reports use
	// it to tell the sides of a claim apart.
	Class results.Class
	// Handler is the CRI runtime handler a Kubernetes node runs this
	// kind of isolation with, named in a RuntimeClass (runsc, runc,
	// kata-qemu); "" for a driver no pod runs as (native, wine).
	Handler string
	// Estimate is a conservative cost of one idle instance with the
	// driver's defaults, for the guards that run before anything of the
	// driver was measured.
	Estimate Estimate
	// Options are the settings the driver takes, checked when a scenario
	// loads; its Factory rejects any other.
	Options []Option
	// GuestMemory, when set, is the memory an instance's guest may touch
	// (a VM's RAM), from the variant's settings and the scenario's
	// memory per instance (0: none given): what the guards hold it to.
	GuestMemory func(opts map[string]string, memoryBytes int64) int64
	// Measures declare the metrics the driver reports of itself
	// (Preparer's, a snapshot's creation time and size), by name: their
	// family, unit, direction and doc (results.Declare).
	Measures map[string]results.MetricKind
	// Labels declare the label keys the driver's instances carry
	// (Readiness.Labels): what each says and the part it plays in the
	// reports (results.DeclareLabel). An instance's label must be
	// declared.
	Labels []results.Label
	// Tools are the host programs the driver runs, for provenance: each
	// run's env.json records the version of every tool of the drivers it
	// ran.
	Tools []Tool
	// Services says the driver runs a user's service (Spec.Image): its
	// image's root under the instance, the agent's service workload
	// exec'ing its command.
	Services bool
	Factory  Factory
}

// Tool is a host program a driver runs, and how to ask its version.
type Tool struct {
	// Name keys the version in env.json's tools ("runsc").
	Name string
	// Version is the command that prints the version on its first line.
	Version []string
}

// Estimate is what one instance is expected to take of the host at most.
type Estimate struct {
	// Tasks counts processes and threads (each takes a PID).
	Tasks int
	// MemoryBytes is host memory.
	MemoryBytes int64
	// Trial is how long a trial of one idle instance takes, start to
	// stop, settle excluded, on a small host (2 cores, TCG for a VM): what
	// a plan's duration is estimated from before anything ran.
	Trial time.Duration
}

var (
	mu       sync.RWMutex
	registry = map[string]Info{}
)

// Register makes a driver available by name. It panics when the name is
// empty, the factory nil, the name already registered, or an option's
// default is not one of its values.
func Register(info Info) {
	mu.Lock()
	defer mu.Unlock()
	if info.Name == "" || info.Factory == nil {
		panic("drivers: Register with empty name or nil factory")
	}
	for _, o := range info.Options {
		if o.Default != "" {
			if err := o.Check(o.Default); err != nil {
				panic(fmt.Sprintf("drivers: %s.%s: default %v", info.Name, o.Name, err))
			}
		}
	}
	if _, dup := registry[info.Name]; dup {
		panic("drivers: Register called twice for " + info.Name)
	}
	for m, k := range info.Measures {
		results.Declare(m, k)
	}
	for _, l := range info.Labels {
		results.DeclareLabel(l)
	}
	registry[info.Name] = info
}

// Lookup returns the named driver's Info.
func Lookup(name string) (Info, error) {
	mu.RLock()
	defer mu.RUnlock()
	info, ok := registry[name]
	if !ok {
		return Info{}, fmt.Errorf("drivers: unknown driver %q (have %v)", name, namesLocked())
	}
	return info, nil
}

// Drivers returns the registered drivers sorted by name.
func Drivers() []Info {
	mu.RLock()
	defer mu.RUnlock()
	var out []Info
	for _, n := range namesLocked() {
		out = append(out, registry[n])
	}
	return out
}

func namesLocked() []string {
	var ns []string
	for n := range registry {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}
