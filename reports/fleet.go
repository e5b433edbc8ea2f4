package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"virtbench/analysis"
	"virtbench/internal/results"
	"virtbench/internal/textsafe"
	"virtbench/internal/units"
)

// FleetReportFile and FleetMarkdownFile are a fleet's report, written
// into its directory.
const (
	FleetReportFile   = "fleet.html"
	FleetMarkdownFile = "fleet.md"
	FleetJSONFile     = "fleet.json"
)

// fleetHostHeader and fleetHostRows are the host table.
var fleetHostHeader = []string{"host", "type", "status", "cpu", "cores", "memory", "kernel", "accelerator", "cgroup", "limits", "virtbench", "calibration"}

func fleetHostRows(f *analysis.Fleet) [][]string {
	var rows [][]string
	for _, h := range f.Hosts {
		status := "completed"
		if h.Failed != "" {
			// On one line: a campaign's reason may hold a tool's newlines.
			status = "failed: " + strings.Join(strings.Fields(h.Failed), " ")
		}
		row := []string{h.Name, h.Record.Type, status}
		if h.Run == nil {
			rows = append(rows, append(row, "", "", "", "", "", "", "", "", ""))
			continue
		}
		p := h.Run.Provenance
		// The cgroups' paths are in each env.json: a table cell holds the limits.
		rows = append(rows, append(row, p.CPUModel, fmt.Sprint(p.Cores), units.Format(float64(p.MemoryBytes), "B"), p.Kernel,
			accelerators(h.Analysis.Roles), p.CgroupVersion, limitsText(p, false), p.Virtbench, calibrationCell(h.Analysis.Host)))
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
var fleetRowHeader = []string{"variant", "host", "type", "start to READY", "range", "PSS", "memory per instance (capacity's)", "idle instances", "binding", "cost per 1000 instance-hours", "claims"}

func fleetRowCells(f *analysis.Fleet, fa *analysis.FleetAnalysis) [][]string {
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
			start, rng = units.Format(r.Startup, "sec"), units.Format(r.StartupLo, "sec")+" … "+units.Format(r.StartupHi, "sec")
		}
		cost := "-"
		if r.CostPerInstanceHour > 0 {
			cost = formatCost1000(r.CostPerInstanceHour)
		}
		idle := formatCount(r.Capacity.Idle)
		if !r.Counted {
			idle += " (not counted: the host failed)"
		}
		rows = append(rows, []string{r.Variant, r.Host, r.Type, start, rng, optBytes(r.PSS), optBytes(r.Memory.Value),
			idle, r.Capacity.Binding, cost, claims[r.Host]})
	}
	return rows
}

func optBytes(v float64) string {
	if v == 0 {
		return "-"
	}
	return units.Format(v, "B")
}

// claimVerdicts is a host's claims in one cell: "startup holds, ...".
func claimVerdicts(cs []analysis.Claim) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.Name+" "+string(c.Verdict))
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

func fleetTotalRows(fa *analysis.FleetAnalysis) [][]string {
	var rows [][]string
	for _, t := range fa.Totals {
		rows = append(rows, choiceRow(t.Variant, t.Idle, t.FleetChoice))
	}
	return rows
}

// choiceRow is a totals row: the variant, the count the fleet holds, the
// cheapest host type per instance-hour and its cost, and the plan for the
// count asked for, where one was.
func choiceRow(variant string, count int, c analysis.FleetChoice) []string {
	cheap, cost := "-", "-"
	if c.Cheapest != "" {
		cheap, cost = c.Cheapest, formatCost1000(c.Cost)
	}
	row := []string{variant, fmt.Sprint(count), cheap, cost}
	if c.For != nil {
		row = append(row, fmt.Sprintf("%d × %s at %s per hour", c.For.Hosts, c.For.HostType, strconv.FormatFloat(c.For.CostPerHour, 'g', 4, 64)))
	}
	return row
}

// fleetTotalHeaderFor is the totals' header, with the plan's column where
// one was asked for.
func fleetTotalHeaderFor(fa *analysis.FleetAnalysis) []string {
	for _, t := range fa.Totals {
		if t.For != nil {
			return append(slices.Clone(fleetTotalHeader), fmt.Sprintf("cheapest for %d idle instances", t.For.Instances))
		}
	}
	return fleetTotalHeader
}

// fleetLoadedHeaderFor and fleetLoadedRows are the fleet's totals at the
// load objective, where its hosts ran objective sweeps: none otherwise.
func fleetLoadedHeaderFor(fa *analysis.FleetAnalysis) []string {
	h := []string{"variant", "instances the fleet holds at the objective (completed hosts)", "cheapest host type per loaded instance-hour", "its cost per 1000 loaded instance-hours"}
	for _, t := range fa.Totals {
		if l := t.Loaded; l != nil && l.For != nil {
			return append(h, fmt.Sprintf("cheapest for %d loaded instances", l.For.Instances))
		}
	}
	return h
}

func fleetLoadedRows(fa *analysis.FleetAnalysis) [][]string {
	var rows [][]string
	for _, t := range fa.Totals {
		if l := t.Loaded; l != nil {
			rows = append(rows, choiceRow(t.Variant, l.Instances, l.FleetChoice))
		}
	}
	return rows
}

// WriteFleetMarkdown writes the fleet's tables as Markdown.
func WriteFleetMarkdown(w io.Writer, f *analysis.Fleet, fa *analysis.FleetAnalysis) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# virtbench fleet: %d hosts\n\n## Hosts\n\n", len(f.Hosts))
	if err := writeMarkdownTable(&b, fleetHostHeader, fleetHostRows(f)); err != nil {
		return err
	}
	if line := speedLine(fa); line != "" {
		fmt.Fprintf(&b, "\n%s\n", textsafe.Markdown(line))
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
	if rows := fleetLoadedRows(fa); len(rows) > 0 {
		b.WriteString("\n## At the load objective\n\n")
		if err := writeMarkdownTable(&b, fleetLoadedHeaderFor(fa), rows); err != nil {
			return err
		}
		fmt.Fprintf(&b, "\n%s\n", ObjectiveModel)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// WriteFleetText writes the fleet's tables for a terminal.
func WriteFleetText(w io.Writer, f *analysis.Fleet, fa *analysis.FleetAnalysis) error {
	for _, t := range []struct {
		title  string
		header []string
		rows   [][]string
	}{
		{"hosts:", fleetHostHeader, fleetHostRows(f)},
		{"\neach variant on each host:", fleetRowHeader, fleetRowCells(f, fa)},
		{"\nthe fleet together:", fleetTotalHeaderFor(fa), fleetTotalRows(fa)},
		{"\nthe fleet at the load objective:", fleetLoadedHeaderFor(fa), fleetLoadedRows(fa)},
	} {
		if len(t.rows) == 0 && t.title != "hosts:" {
			continue
		}
		fmt.Fprintln(w, t.title)
		if err := writeTextTable(w, t.header, t.rows); err != nil {
			return err
		}
		if line := speedLine(fa); line != "" && t.title == "hosts:" {
			fmt.Fprintln(w, line)
		}
	}
	return nil
}

// fleetBars gives a chart's bars: per variant (series), one bar per host,
// of value.
func fleetBars(f *analysis.Fleet, fa *analysis.FleetAnalysis, value func(analysis.FleetRow) float64) Bars {
	var b Bars
	bar := map[string]int{} // a host's bar; hosts without a run have none
	for _, h := range f.Hosts {
		if h.Analysis != nil {
			bar[h.Name] = len(b.Labels)
			b.Labels = append(b.Labels, analysis.HostLabel(h)+" ("+h.Name+")")
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
func FleetCharts(f *analysis.Fleet, fa *analysis.FleetAnalysis) ([]Chart, error) {
	var out []Chart
	for _, c := range []struct {
		name, title, ylabel, unit string
		value                     func(analysis.FleetRow) float64
	}{
		{"fleet-startup", "Median start to READY per host (lower is better)", "seconds", "sec", func(r analysis.FleetRow) float64 { return r.Startup }},
		{"fleet-capacity", "Idle instances that fit per host (the capacity model)", "instances", "instances", func(r analysis.FleetRow) float64 { return float64(max(r.Capacity.Idle, 0)) }},
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
{{with .Speeds}}<p id="speeds">{{.}}</p>{{end}}
<h2>Each variant on each host</h2>
<table id="variants"><tr>{{range .RowHeader}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
<h2>The fleet together</h2>
<table id="totals"><tr>{{range .TotalHeader}}<th>{{.}}</th>{{end}}</tr>
{{range .Totals}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
<p>{{.Model}}</p>
{{if .Loaded}}<h2>At the load objective</h2>
<table id="loaded"><tr>{{range .LoadedHeader}}<th>{{.}}</th>{{end}}</tr>
{{range .Loaded}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
<p>{{.ObjectiveModel}}</p>{{end}}
{{range .Charts}}<h2>{{.Title}}</h2>{{.SVG}}
{{end}}</body></html>
`))

// WriteFleet writes the fleet's report (fleet.html, fleet.md and
// fleet.json, with the charts) into its directory and returns the path of
// fleet.html.
func WriteFleet(f *analysis.Fleet, fa *analysis.FleetAnalysis) (string, error) {
	charts, err := FleetCharts(f, fa)
	if err != nil {
		return "", err
	}
	type chartView struct {
		Title string
		SVG   template.HTML
	}
	data := struct {
		Fleet                              *analysis.Fleet
		HostHeader, RowHeader, TotalHeader []string
		LoadedHeader                       []string
		HostRows, Rows, Totals, Loaded     [][]string
		Model, Speeds, ObjectiveModel      string
		Charts                             []chartView
	}{Fleet: f, HostHeader: fleetHostHeader, RowHeader: fleetRowHeader, TotalHeader: fleetTotalHeaderFor(fa),
		LoadedHeader: fleetLoadedHeaderFor(fa), Loaded: safeRows(fleetLoadedRows(fa)), ObjectiveModel: ObjectiveModel,
		Speeds: speedLine(fa), HostRows: safeRows(fleetHostRows(f)), Rows: safeRows(fleetRowCells(f, fa)), Totals: safeRows(fleetTotalRows(fa)), Model: CapacityModel}
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

// calibrationCell is a host's calibration in a cell: its speed per core
// and whether it was quiet; unknown (never 0) for a run that recorded
// none.
func calibrationCell(h analysis.HostState) string {
	switch {
	case !h.Known:
		return "unknown (no calibration: an older virtbench)"
	case h.Quiet:
		return fmt.Sprintf("%s SHA-256 op/s per core; steal %.1f%%; quiet", units.Format(h.CPUPerCore, ""), h.StealPercent)
	}
	return fmt.Sprintf("%s SHA-256 op/s per core; NOISY: %s", units.Format(h.CPUPerCore, ""), strings.Join(h.Reasons, "; "))
}

// speedLine sets the host types beside each other per core, or "".
func speedLine(fa *analysis.FleetAnalysis) string {
	if len(fa.Speeds) == 0 {
		return ""
	}
	var parts []string
	for _, s := range fa.Speeds[1:] {
		parts = append(parts, fmt.Sprintf("%s is %.2f× as fast as %s per core", s.HostType, s.VsSlowest, fa.Speeds[0].HostType))
	}
	return "Per core, by the quiet hosts' calibration: " + strings.Join(parts, "; ") + ". Read each host's figures with its speed in mind."
}
