package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"virtbench/internal/results"
)

// A fleet is one scenario run on several hosts: a directory holding a
// directory per host (named after the host, as a campaign's inventory
// names it), each holding that host's run directory (or being it), and
// beside it, where the campaign wrote one, HostInfoFile.

// HostInfoFile is what a campaign says of a host beside its run: its type
// and price from the inventory, and why it failed where it did.
const HostInfoFile = "host.json"

// CampaignFile, in a fleet directory, lists the hosts the campaign set out
// to run on: each is in the report, also one it never got to speak of.
const CampaignFile = "campaign.json"

// Campaign is the content of CampaignFile.
type Campaign struct {
	Scenario string   `json:"scenario"`
	Hosts    []string `json:"hosts"`
}

// HostInfo is the content of HostInfoFile.
type HostInfo struct {
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
	Name string
	Info HostInfo
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

// FleetReportFile and FleetMarkdownFile are a fleet's report, written
// into its directory.
const (
	FleetReportFile   = "fleet.html"
	FleetMarkdownFile = "fleet.md"
	FleetJSONFile     = "fleet.json"
)

// ErrNotFleet reports a directory that holds no host with a run or a
// campaign's word on it.
var ErrNotFleet = errors.New("not a fleet directory (no host directory with a run directory or " + HostInfoFile + ")")

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
	infoErr := results.ReadJSON(dir, HostInfoFile, &h.Info)
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
		h.Run, h.Analysis = r, Analyze(r)
		r.Samples = nil // the analysis holds what the fleet reads
		if st := r.Status; st.State != results.StateCompleted {
			h.Failed = "the run ended " + st.State
			if st.Reason != "" {
				h.Failed += ": " + st.Reason
			}
		}
	}
	if h.Info.Failed != "" {
		h.Failed = h.Info.Failed
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

// isRunDir reports whether dir holds a run's three records, whatever
// they are: Load then refuses one that is not a regular file, or is a
// link, naming it.
func isRunDir(dir string) bool {
	for _, f := range []string{results.SamplesFile, results.EnvFile, results.StatusFile} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

// FleetRow is one variant on one host: its start, memory and capacity.
type FleetRow struct {
	Variant string `json:"variant"`
	Host    string `json:"host"`
	Type    string `json:"host_type,omitempty"`
	// Startup is the median start to READY of an idle instance, with its
	// interval; 0 where not measured.
	Startup, StartupLo, StartupHi float64
	// PSS and MemDrop are per idle instance (MemDrop: the density sweep's
	// at its largest step, else the trials').
	PSS, MemDrop float64
	Capacity     Capacity `json:"capacity"`
	// CostPerInstanceHour is the host's price per hour over its idle
	// capacity; 0 where no price was given.
	CostPerInstanceHour float64 `json:"cost_per_instance_hour,omitempty"`
	// Counted marks a row of a host that completed its run: only those
	// count in the fleet's totals. A failed host's rows show what it
	// produced before it failed, and count for nothing.
	Counted bool `json:"counted"`
}

// FleetTotal is what the fleet's hosts hold of one variant together, and
// the host type where an instance-hour of it costs least.
type FleetTotal struct {
	Variant  string  `json:"variant"`
	Idle     int     `json:"idle_instances"`
	Cheapest string  `json:"cheapest_host_type,omitempty"`
	Cost     float64 `json:"cheapest_cost_per_instance_hour,omitempty"`
	// For, where the report was asked for a count of instances: the host
	// type that holds that many idle instances for the least per hour,
	// how many of its hosts that takes and what they cost an hour.
	For *FleetPlan `json:"for,omitempty"`
}

// FleetPlan is the cheapest way to hold Instances idle instances of a
// variant on hosts of one type.
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
			row := FleetRow{Variant: c.Driver, Host: h.Name, Type: h.Info.Type, Capacity: c, Counted: h.Failed == ""}
			if s, ok := idleOne(h.Analysis.Summaries, c.Driver, results.MetricStartup); ok {
				row.Startup, row.StartupLo, row.StartupHi = s.Median, s.CILo, s.CIHi
			}
			if s, ok := idleOne(h.Analysis.Summaries, c.Driver, results.MetricPSS); ok {
				row.PSS = s.Median
			}
			if s, ok := largest(h.Analysis.Summaries, c.Driver, results.MetricDensityMemDrop); ok {
				row.MemDrop = s.Median
			} else if s, ok := idleOne(h.Analysis.Summaries, c.Driver, results.MetricHostMemDrop); ok {
				row.MemDrop = s.Median
			}
			t := totals[c.Driver]
			if t == nil {
				t = &FleetTotal{Variant: c.Driver}
				totals[c.Driver] = t
				order = append(order, c.Driver)
			}
			if c.Idle > 0 && row.Counted {
				t.Idle = min(t.Idle+c.Idle, MaxCount)
				if h.Info.PricePerHour > 0 {
					row.CostPerInstanceHour = h.Info.PricePerHour / float64(c.Idle)
					if t.Cheapest == "" || row.CostPerInstanceHour < t.Cost {
						t.Cheapest, t.Cost = hostLabel(h), row.CostPerInstanceHour
					}
					if instances > 0 {
						n := (instances + c.Idle - 1) / c.Idle
						if p := (FleetPlan{instances, hostLabel(h), n, float64(n) * h.Info.PricePerHour}); t.For == nil || p.CostPerHour < t.For.CostPerHour {
							t.For = &p
						}
					}
				}
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
	return fa
}

// hostLabel is a host's type where the campaign gave one, else its name.
func hostLabel(h FleetHost) string {
	if h.Info.Type != "" {
		return h.Info.Type
	}
	return h.Name
}

// fleetHostHeader and fleetHostRows are the host table.
var fleetHostHeader = []string{"host", "type", "status", "cpu", "cores", "memory", "kernel", "accelerator", "cgroup", "limits", "virtbench"}

func fleetHostRows(f *Fleet) [][]string {
	var rows [][]string
	for _, h := range f.Hosts {
		status := "completed"
		if h.Failed != "" {
			// On one line: a campaign's reason may hold a tool's newlines.
			status = "failed: " + strings.Join(strings.Fields(h.Failed), " ")
		}
		row := []string{h.Name, h.Info.Type, status}
		if h.Run == nil {
			rows = append(rows, append(row, "", "", "", "", "", "", "", ""))
			continue
		}
		p := h.Run.Provenance
		// The cgroups' paths are in each env.json: a table cell holds the limits.
		rows = append(rows, append(row, p.CPUModel, fmt.Sprint(p.Cores), FormatValue(float64(p.MemoryBytes), "B"), p.Kernel,
			accelerators(h.Analysis.Roles), p.CgroupVersion, limitsText(p, false), p.Virtbench))
	}
	return rows
}

// accelerators lists the accelerators the run's VMs actually used.
func accelerators(roles map[string]results.Role) string {
	var out []string
	for _, r := range roles {
		for _, a := range r.Accel {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "none (no VM ran)"
	}
	return strings.Join(out, ", ")
}

// fleetRowHeader and fleetRowCells are the per variant and host table.
var fleetRowHeader = []string{"variant", "host", "type", "start to READY", "range", "PSS", "MemAvailable drop", "idle instances", "binding", "cost per 1000 instance-hours", "claims"}

func fleetRowCells(f *Fleet, fa *FleetAnalysis) [][]string {
	claims := map[string]string{}
	for _, h := range f.Hosts {
		if h.Analysis != nil {
			claims[h.Name] = claimVerdicts(h.Analysis.Claims)
		}
	}
	var rows [][]string
	for _, r := range fa.Rows {
		start, rng := "-", "-"
		if r.Startup > 0 {
			start, rng = FormatValue(r.Startup, "sec"), FormatValue(r.StartupLo, "sec")+" … "+FormatValue(r.StartupHi, "sec")
		}
		cost := "-"
		if r.CostPerInstanceHour > 0 {
			cost = formatCost1000(r.CostPerInstanceHour)
		}
		idle := formatCount(r.Capacity.Idle)
		if !r.Counted {
			idle += " (not counted: the host failed)"
		}
		rows = append(rows, []string{r.Variant, r.Host, r.Type, start, rng, optBytes(r.PSS), optBytes(r.MemDrop),
			idle, r.Capacity.Binding, cost, claims[r.Host]})
	}
	return rows
}

func optBytes(v float64) string {
	if v == 0 {
		return "-"
	}
	return FormatValue(v, "B")
}

// claimVerdicts is a host's claims in one cell: "startup holds, ...".
func claimVerdicts(cs []Claim) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.Name+" "+c.Verdict)
	}
	return strings.Join(parts, "; ")
}

// formatCost1000 writes a cost per instance-hour as the cost of 1000
// instance-hours, to three significant digits, in the inventory's
// currency.
func formatCost1000(perHour float64) string {
	return strconv.FormatFloat(1000*perHour, 'g', 3, 64)
}

// fleetTotalHeader and fleetTotalRows are the fleet's totals.
var fleetTotalHeader = []string{"variant", "idle instances the fleet holds (completed hosts)", "cheapest host type per instance-hour", "its cost per 1000 instance-hours"}

func fleetTotalRows(fa *FleetAnalysis) [][]string {
	var rows [][]string
	for _, t := range fa.Totals {
		cheap, cost := "-", "-"
		if t.Cheapest != "" {
			cheap, cost = t.Cheapest, formatCost1000(t.Cost)
		}
		row := []string{t.Variant, fmt.Sprint(t.Idle), cheap, cost}
		if t.For != nil {
			row = append(row, fmt.Sprintf("%d × %s at %s per hour", t.For.Hosts, t.For.HostType, strconv.FormatFloat(t.For.CostPerHour, 'g', 4, 64)))
		}
		rows = append(rows, row)
	}
	return rows
}

// fleetTotalHeaderFor is the totals' header, with the plan's column where
// one was asked for.
func fleetTotalHeaderFor(fa *FleetAnalysis) []string {
	for _, t := range fa.Totals {
		if t.For != nil {
			return append(slices.Clone(fleetTotalHeader), fmt.Sprintf("cheapest for %d idle instances", t.For.Instances))
		}
	}
	return fleetTotalHeader
}

// WriteFleetMarkdown writes the fleet's tables as Markdown.
func WriteFleetMarkdown(w io.Writer, f *Fleet, fa *FleetAnalysis) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# virtbench fleet: %d hosts\n\n## Hosts\n\n", len(f.Hosts))
	if err := writeMarkdownTable(&b, fleetHostHeader, fleetHostRows(f)); err != nil {
		return err
	}
	b.WriteString("\n## Each variant on each host\n\n")
	if err := writeMarkdownTable(&b, fleetRowHeader, fleetRowCells(f, fa)); err != nil {
		return err
	}
	b.WriteString("\n## The fleet together\n\n")
	if err := writeMarkdownTable(&b, fleetTotalHeaderFor(fa), fleetTotalRows(fa)); err != nil {
		return err
	}
	fmt.Fprintf(&b, "\n%s\n", CapacityModel)
	_, err := w.Write(b.Bytes())
	return err
}

// WriteFleetText writes the fleet's tables for a terminal.
func WriteFleetText(w io.Writer, f *Fleet, fa *FleetAnalysis) error {
	for _, t := range []struct {
		title  string
		header []string
		rows   [][]string
	}{
		{"hosts:", fleetHostHeader, fleetHostRows(f)},
		{"\neach variant on each host:", fleetRowHeader, fleetRowCells(f, fa)},
		{"\nthe fleet together:", fleetTotalHeaderFor(fa), fleetTotalRows(fa)},
	} {
		fmt.Fprintln(w, t.title)
		if err := writeTextTable(w, t.header, t.rows); err != nil {
			return err
		}
	}
	return nil
}

// fleetBars gives a chart's bars: per variant (series), one bar per host,
// of value.
func fleetBars(f *Fleet, fa *FleetAnalysis, value func(FleetRow) float64) Bars {
	var b Bars
	bar := map[string]int{} // a host's bar; hosts without a run have none
	for _, h := range f.Hosts {
		if h.Analysis != nil {
			bar[h.Name] = len(b.Labels)
			b.Labels = append(b.Labels, hostLabel(h)+" ("+h.Name+")")
		}
	}
	series := map[string]*BarSeries{}
	var order []string
	for _, r := range fa.Rows {
		s := series[r.Variant]
		if s == nil {
			s = &BarSeries{Name: r.Variant, Values: make([]float64, len(b.Labels))}
			series[r.Variant] = s
			order = append(order, r.Variant)
		}
		s.Values[bar[r.Host]] = value(r)
	}
	for _, v := range order {
		b.Series = append(b.Series, *series[v])
	}
	return b
}

// FleetCharts draws start time and capacity per host.
func FleetCharts(f *Fleet, fa *FleetAnalysis) ([]Chart, error) {
	var out []Chart
	for _, c := range []struct {
		name, title, ylabel, unit string
		value                     func(FleetRow) float64
	}{
		{"fleet-startup", "Median start to READY per host (lower is better)", "seconds", "sec", func(r FleetRow) float64 { return r.Startup }},
		{"fleet-capacity", "Idle instances that fit per host (the capacity model)", "instances", "instances", func(r FleetRow) float64 { return float64(max(r.Capacity.Idle, 0)) }},
	} {
		b := fleetBars(f, fa, c.value)
		if len(b.Labels) == 0 || len(b.Series) == 0 {
			continue
		}
		ch, err := BarsChart(c.name, c.title, c.ylabel, c.unit, b, false)
		if err != nil {
			return nil, err
		}
		out = append(out, ch)
	}
	return out, nil
}

var fleetHTML = template.Must(template.New("fleet").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>virtbench fleet: {{len .Fleet.Hosts}} hosts</title>
<style>body{font-family:"Liberation Sans",Arial,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;font-size:.9em}th{background:#f3f3f3}.failed{color:#b00020;font-weight:bold}svg{max-width:100%;height:auto}</style></head><body>
<h1>virtbench fleet: {{len .Fleet.Hosts}} hosts</h1>
<h2>Hosts</h2>
<table id="hosts"><tr>{{range .HostHeader}}<th>{{.}}</th>{{end}}</tr>
{{range .HostRows}}<tr>{{range $i, $c := .}}<td{{if and (eq $i 2) (ne $c "completed")}} class="failed"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</table>
<h2>Each variant on each host</h2>
<table id="variants"><tr>{{range .RowHeader}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
<h2>The fleet together</h2>
<table id="totals"><tr>{{range .TotalHeader}}<th>{{.}}</th>{{end}}</tr>
{{range .Totals}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
<p>{{.Model}}</p>
{{range .Charts}}<h2>{{.Title}}</h2>{{.SVG}}
{{end}}</body></html>
`))

// WriteFleet writes the fleet's report (fleet.html, fleet.md and
// fleet.json, with the charts) into its directory and returns the path of
// fleet.html.
func WriteFleet(f *Fleet, fa *FleetAnalysis) (string, error) {
	charts, err := FleetCharts(f, fa)
	if err != nil {
		return "", err
	}
	type chartView struct {
		Title string
		SVG   template.HTML
	}
	data := struct {
		Fleet                              *Fleet
		HostHeader, RowHeader, TotalHeader []string
		HostRows, Rows, Totals             [][]string
		Model                              string
		Charts                             []chartView
	}{Fleet: f, HostHeader: fleetHostHeader, RowHeader: fleetRowHeader, TotalHeader: fleetTotalHeaderFor(fa),
		HostRows: safeRows(fleetHostRows(f)), Rows: safeRows(fleetRowCells(f, fa)), Totals: safeRows(fleetTotalRows(fa)), Model: CapacityModel}
	var files []results.File
	for _, c := range charts {
		data.Charts = append(data.Charts, chartView{Title: c.Title, SVG: c.Inline()})
		files = append(files, c.Files()...)
	}
	var page, md bytes.Buffer
	if err := executeSafe(&page, fleetHTML, data); err != nil {
		return "", fmt.Errorf("reports: fleet.html: %w", err)
	}
	if err := WriteFleetMarkdown(&md, f, fa); err != nil {
		return "", err
	}
	js, err := json.MarshalIndent(fa, "", "  ")
	if err != nil {
		return "", fmt.Errorf("reports: fleet.json: %w", err)
	}
	files = append(files, results.File{Name: FleetReportFile, Data: page.Bytes()}, results.File{Name: FleetMarkdownFile, Data: md.Bytes()},
		results.File{Name: FleetJSONFile, Data: append(js, '\n')})
	if err := results.WriteFilesAtomic(f.Dir, files); err != nil {
		return "", err
	}
	return filepath.Join(f.Dir, FleetReportFile), nil
}
