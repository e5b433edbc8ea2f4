package analysis

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"virtbench/internal/results"
)

// A fleet is one scenario run on several hosts: a directory holding a
// directory per host (named after the host, as a campaign's inventory
// names it), each holding that host's run directory (or being it), and
// beside it, where the campaign wrote one, HostRecordFile.

// HostRecordFile is what a campaign says of a host beside its run: its
// type and price from the inventory, and why it failed where it did.
const HostRecordFile = "host.json"

// CampaignFile, in a fleet directory, lists the hosts the campaign set out
// to run on: each is in the report, also one it never got to speak of.
const CampaignFile = "campaign.json"

// Campaign is the content of CampaignFile.
type Campaign struct {
	Scenario string   `json:"scenario"`
	Hosts    []string `json:"hosts"`
}

// HostRecord is the content of HostRecordFile.
type HostRecord struct {
	// Type is the host's type (a label the inventory gives: "16c64g").
	Type string `json:"host_type,omitempty"`
	// PricePerHour is what an hour of the host costs, in the inventory's
	// currency; 0 where not given.
	PricePerHour float64 `json:"price_per_hour,omitempty"`
	// Failed says why the host's part of the campaign failed (unreachable,
	// a task's error); "" where it did not.
	Failed string `json:"failed,omitempty"`
}

// FleetHost is one host of a fleet: its run, where it left one, and its
// analysis.
type FleetHost struct {
	Name   string
	Record HostRecord
	// Run and Analysis are nil where the host left no run directory.
	Run      *Run
	Analysis *Analysis
	// Failed says why the host did not complete its run: what the
	// campaign said (Info.Failed), else how the run ended; "" for a
	// completed run.
	Failed string
}

// Fleet is the hosts of one fleet directory, in name order.
type Fleet struct {
	Dir   string
	Hosts []FleetHost
	// Warnings say what of the directory was left out, and why (a
	// directory whose name is not a host's).
	Warnings []string
}

// ErrNotFleet reports a directory that holds no host with a run or a
// campaign's word on it.
var ErrNotFleet = errors.New("not a fleet directory (no host directory with a run directory or " + HostRecordFile + ")")

// LoadFleet reads a fleet directory: every subdirectory is a host, whose
// run directory is the subdirectory itself or the one run directory
// inside it. A host without a run, or whose run did not complete, is
// kept, named as failed with the reason; so is one that CampaignFile
// lists and that left nothing at all.
//
// What the hosts sent back is untrusted: a host is a directory (not a
// link) whose name is a host's (results.ValidHost), its files are read
// through no link (safefile.OpenIn), and only each host's analysis is
// kept, not its samples, so that memory grows with the hosts' summaries,
// not with what they measured.
func LoadFleet(dir string) (*Fleet, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	var c Campaign
	if err := results.ReadJSON(dir, CampaignFile, &c); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	f := &Fleet{Dir: dir}
	for _, name := range c.Hosts {
		if !results.ValidHost(name) {
			f.Warnings = append(f.Warnings, fmt.Sprintf("%s lists a host named %q, which is not a host's name (%s): left out", CampaignFile, name, results.HostPattern))
		}
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if !results.ValidHost(e.Name()) {
			f.Warnings = append(f.Warnings, fmt.Sprintf("directory %q is not a host's name (%s): left out", e.Name(), results.HostPattern))
			continue
		}
		h, ok, err := loadFleetHost(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if !ok && slices.Contains(c.Hosts, e.Name()) {
			h, ok = FleetHost{Name: e.Name(), Failed: "no run directory came back, and the campaign ended before it spoke of this host"}, true
		}
		if ok {
			f.Hosts = append(f.Hosts, h)
		}
	}
	if len(f.Hosts) == 0 {
		return nil, fmt.Errorf("reports: %s: %w", dir, ErrNotFleet)
	}
	return f, nil
}

// loadFleetHost reads one host's directory; ok is false for a directory
// that is neither a host's run nor one the campaign spoke of.
func loadFleetHost(dir string) (FleetHost, bool, error) {
	h := FleetHost{Name: filepath.Base(dir)}
	infoErr := results.ReadJSON(dir, HostRecordFile, &h.Record)
	hasInfo := infoErr == nil
	if infoErr != nil && !errors.Is(infoErr, os.ErrNotExist) {
		return h, false, infoErr
	}
	runDir, err := hostRunDir(dir)
	switch {
	case err != nil && !hasInfo:
		return h, false, nil
	case err != nil:
		h.Failed = "no run directory came back"
	default:
		r, err := Load(runDir)
		if err != nil {
			h.Failed = fmt.Sprintf("its run directory cannot be read: %v", err)
			break
		}
		h.Run, h.Analysis = r, Analyze(r, nil)
		// The analysis holds what the fleet reads: the values go.
		r.Measurements = nil
		if st := r.Status; st.State != results.StateCompleted {
			h.Failed = "the run ended " + st.State
			if st.Reason != "" {
				h.Failed += ": " + st.Reason
			}
		}
	}
	if h.Record.Failed != "" {
		h.Failed = h.Record.Failed
	}
	return h, true, nil
}

// hostRunDir returns dir where it is a run directory, else the one run
// directory inside it.
func hostRunDir(dir string) (string, error) {
	if isRunDir(dir) {
		return dir, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var found []string
	for _, e := range entries {
		if d := filepath.Join(dir, e.Name()); e.IsDir() && isRunDir(d) {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("%s: %d run directories, want one", dir, len(found))
	}
	return found[0], nil
}

// FleetRow is one variant on one host: its start, memory and capacity.
type FleetRow struct {
	Variant string `json:"variant"`
	Host    string `json:"host"`
	Type    string `json:"host_type,omitempty"`
	// Startup is the median start to READY of an idle instance, with its
	// range (its interval, or its values' range where too few for one); 0
	// where not measured.
	Startup   float64 `json:"startup"`
	StartupLo float64 `json:"startup_lo"`
	StartupHi float64 `json:"startup_hi"`
	// PSS is an idle instance's; Memory is what the capacity model took
	// one instance to cost the host (its memory limit's cost, with its
	// source): the figure the host's capacity is made of.
	PSS      float64  `json:"pss"`
	Memory   Cost     `json:"memory_per_instance"`
	Capacity Capacity `json:"capacity"`
	// CostPerInstanceHour is the host's price per hour over its idle
	// capacity; 0 where no price was given.
	CostPerInstanceHour float64 `json:"cost_per_instance_hour,omitempty"`
	// CostPerLoadedInstanceHour is the host's price per hour over its
	// capacity at the load objective; 0 where none was found or no price
	// was given.
	CostPerLoadedInstanceHour float64 `json:"cost_per_loaded_instance_hour,omitempty"`
	// Counted marks a row of a host that completed its run: only those
	// count in the fleet's totals. A failed host's rows show what it
	// produced before it failed, and count for nothing.
	Counted bool `json:"counted"`
}

// FleetTotal is what the fleet's hosts hold of one variant together, and
// the host type where an instance-hour of it costs least.
type FleetTotal struct {
	Variant string `json:"variant"`
	Idle    int    `json:"idle_instances"`
	FleetChoice
	// Loaded is the same of the instances that met a load objective
	// (Capacity.Objective), where the hosts ran objective sweeps.
	Loaded *FleetLoaded `json:"at_objective,omitempty"`
}

// FleetLoaded is what the fleet's hosts hold of one variant at its load
// objective, and where an instance-hour at that load costs least.
type FleetLoaded struct {
	Instances int `json:"instances"`
	FleetChoice
}

// FleetChoice is the host type where an instance-hour costs least, and,
// where the report was asked for a count of instances (For), the host
// type that holds that many for the least per hour, how many of its
// hosts that takes and what they cost an hour.
type FleetChoice struct {
	Cheapest string     `json:"cheapest_host_type,omitempty"`
	Cost     float64    `json:"cheapest_cost_per_instance_hour,omitempty"`
	For      *FleetPlan `json:"for,omitempty"`
}

// consider weighs host h, which holds count instances, for the choice;
// instances is the count asked for (0: none). It returns the host's cost
// per instance-hour, 0 where it has no price.
func (fc *FleetChoice) consider(h FleetHost, count, instances int) float64 {
	if count <= 0 || h.Record.PricePerHour <= 0 {
		return 0
	}
	cost := h.Record.PricePerHour / float64(count)
	if fc.Cheapest == "" || cost < fc.Cost {
		fc.Cheapest, fc.Cost = HostLabel(h), cost
	}
	if instances > 0 {
		n := (instances + count - 1) / count
		if p := (FleetPlan{instances, HostLabel(h), n, float64(n) * h.Record.PricePerHour}); fc.For == nil || p.CostPerHour < fc.For.CostPerHour {
			fc.For = &p
		}
	}
	return cost
}

// FleetPlan is the cheapest way to hold Instances instances of a variant
// (idle, or at the load objective) on hosts of one type.
type FleetPlan struct {
	Instances   int     `json:"instances"`
	HostType    string  `json:"host_type"`
	Hosts       int     `json:"hosts"`
	CostPerHour float64 `json:"cost_per_hour"`
}

// FleetAnalysis is what the fleet report says.
type FleetAnalysis struct {
	Rows   []FleetRow   `json:"rows"`
	Totals []FleetTotal `json:"totals"`
	// Speeds set the host types beside each other per core, from their
	// hosts' calibration (quiet hosts only); none where fewer than two
	// types are known.
	Speeds []HostSpeed `json:"speeds,omitempty"`
}

// HostSpeed is a host type's speed per core beside the slowest type's:
// its hosts' calibration CPU probe (the fastest quiet host of the type).
type HostSpeed struct {
	HostType   string  `json:"host_type"`
	CPUPerCore float64 `json:"cpu_per_core"`
	// VsSlowest is CPUPerCore over the slowest type's.
	VsSlowest float64 `json:"vs_slowest"`
}

// AnalyzeFleet sets every variant of every host that ran beside the
// others and sums the fleet; where instances is above 0, it also finds,
// per variant, the host type that holds that many idle instances for the
// least per hour (each host standing for its type, as its run measured
// it).
func AnalyzeFleet(f *Fleet, instances int) *FleetAnalysis {
	fa := &FleetAnalysis{}
	totals := map[string]*FleetTotal{}
	var order []string
	for _, h := range f.Hosts {
		if h.Analysis == nil {
			continue
		}
		for _, c := range h.Analysis.Capacity {
			if c.Host != ThisHost {
				continue
			}
			row := FleetRow{Variant: c.Variant, Host: h.Name, Type: h.Record.Type, Capacity: c, Counted: h.Failed == "", Memory: c.Limits[0].Cost}
			x := h.Analysis.Index
			if s, ok := x.Single(c.Variant, results.MetricStartup); ok {
				row.Startup = s.Median
				row.StartupLo, row.StartupHi = s.Range()
			}
			row.PSS = x.Median(c.Variant, results.MetricPSS)
			t := totals[c.Variant]
			if t == nil {
				t = &FleetTotal{Variant: c.Variant}
				totals[c.Variant] = t
				order = append(order, c.Variant)
			}
			if c.Idle > 0 && row.Counted {
				t.Idle = min(t.Idle+c.Idle, MaxCount)
				row.CostPerInstanceHour = t.consider(h, c.Idle, instances)
			}
			if o := c.Objective; o != nil && row.Counted {
				if t.Loaded == nil {
					t.Loaded = &FleetLoaded{}
				}
				t.Loaded.Instances = min(t.Loaded.Instances+o.Instances, MaxCount)
				row.CostPerLoadedInstanceHour = t.Loaded.consider(h, o.Instances, instances)
			}
			fa.Rows = append(fa.Rows, row)
		}
	}
	sort.SliceStable(fa.Rows, func(i, j int) bool {
		return slices.Index(order, fa.Rows[i].Variant) < slices.Index(order, fa.Rows[j].Variant)
	})
	for _, v := range order {
		fa.Totals = append(fa.Totals, *totals[v])
	}
	fa.Speeds = hostSpeeds(f)
	return fa
}

// hostSpeeds returns each host type's speed per core (its fastest quiet
// host's calibration) beside the slowest type's, slowest first.
func hostSpeeds(f *Fleet) []HostSpeed {
	best := map[string]float64{}
	var types []string
	for _, h := range f.Hosts {
		if h.Analysis == nil || !h.Analysis.Host.Known || !h.Analysis.Host.Quiet {
			continue
		}
		t := HostLabel(h)
		if _, ok := best[t]; !ok {
			types = append(types, t)
		}
		best[t] = max(best[t], h.Analysis.Host.CPUPerCore)
	}
	if len(types) < 2 {
		return nil
	}
	sort.SliceStable(types, func(i, j int) bool { return best[types[i]] < best[types[j]] })
	var out []HostSpeed
	for _, t := range types {
		out = append(out, HostSpeed{HostType: t, CPUPerCore: best[t], VsSlowest: best[t] / best[types[0]]})
	}
	return out
}

// HostLabel is a host's type where the campaign gave one, else its name.
func HostLabel(h FleetHost) string {
	if h.Record.Type != "" {
		return h.Record.Type
	}
	return h.Name
}
