package reports

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"

	"virtbench/bench"
)

// Host is the size of a host to plan for.
type Host struct {
	Name        string
	MemoryBytes int64
	CPUs        int
}

// Capacity estimates how many instances of one driver fit on a host.
type Capacity struct {
	Host   string `json:"host"`
	Driver string `json:"driver"`
	// PerInstanceBytes is the memory one idle instance costs the host, and
	// Source says which measurement it is.
	PerInstanceBytes float64 `json:"per_instance_bytes"`
	Source           string  `json:"source"`
	// Idle is how many idle instances fit (memory-bound: MemAvailable down
	// to the floor); Busy how many run at full speed when each keeps one
	// CPU busy (CPU-bound, also limited by memory).
	Idle, Busy int
	// Limit names the resource that runs out first for idle instances.
	Limit string `json:"limit"`
}

// perInstance returns the memory per idle instance of driver: the larger of
// its PSS and the host's MemAvailable drop per instance, preferring the
// density sweep's figure at its largest count.
func perInstance(sums []bench.Summary, driver string) (float64, string) {
	var best bench.Summary
	for _, s := range sums {
		if s.Driver == driver && s.Metric == bench.MetricDensityMemDrop && s.N > 0 && s.Instances > best.Instances {
			best = s
		}
	}
	if best.N > 0 {
		return best.Median, fmt.Sprintf("MemAvailable drop per instance at %d instances (density sweep)", best.Instances)
	}
	var pss, drop float64
	var pssN, dropN int
	for _, s := range sums {
		if s.Driver != driver || s.Workload != "idle" || s.N == 0 {
			continue
		}
		if s.Metric == bench.MetricPSS && s.Instances >= pssN {
			pss, pssN = s.Median, s.Instances
		}
		if s.Metric == bench.MetricHostMemDrop && s.Instances >= dropN && s.Instances > 1 {
			drop, dropN = s.Median, s.Instances
		}
	}
	if drop > pss {
		return drop, fmt.Sprintf("MemAvailable drop per instance at %d instances", dropN)
	}
	if pss > 0 {
		return pss, fmt.Sprintf("PSS of an idle instance (%d at a time)", pssN)
	}
	return 0, ""
}

// EstimateCapacity estimates, for every driver with memory figures, how many
// instances fit on each host. Memory down to the density floor (the larger
// of 20% and 2 GiB) is usable.
func EstimateCapacity(sums []bench.Summary, hosts []Host) []Capacity {
	seen := map[string]bool{}
	var out []Capacity
	for _, s := range sums {
		if seen[s.Driver] {
			continue
		}
		per, src := perInstance(sums, s.Driver)
		if per <= 0 {
			continue
		}
		seen[s.Driver] = true
		for _, h := range hosts {
			usable := float64(h.MemoryBytes - bench.DensityFloor(h.MemoryBytes))
			idle := int(math.Floor(usable / per))
			c := Capacity{Host: h.Name, Driver: s.Driver, PerInstanceBytes: per, Source: src, Idle: idle, Limit: "memory"}
			c.Busy = min(idle, h.CPUs)
			out = append(out, c)
		}
	}
	return out
}

// WriteCapacity writes the estimates as a table with their assumptions.
func WriteCapacity(w io.Writer, caps []Capacity) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "host\tdriver\tmemory/instance\tidle instances\tbusy instances\tlimit (idle)\tmeasured as")
	for _, c := range caps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", c.Host, c.Driver, FormatValue(c.PerInstanceBytes, "B"), c.Idle, c.Busy, c.Limit, c.Source)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "idle: memory-bound, keeping MemAvailable above max(20%, 2 GiB); busy: one CPU per instance at full speed. CPU, pids and disk are not limits for idle instances at these counts.")
	return err
}
