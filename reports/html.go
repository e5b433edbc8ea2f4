package reports

import (
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"

	"virtbench/analysis"
	"virtbench/internal/results"
	"virtbench/internal/textsafe"
	"virtbench/internal/units"
)

var htmlTmpl = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>virtbench report: {{.Status.Scenario}}</title>
<style>
body{font-family:"Liberation Sans",Arimo,Arial,Helvetica,sans-serif;margin:2em auto;max-width:70em;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
.warn{color:#a60}.fail{color:#b00}
#chart-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(28em,1fr));gap:1em}
.chart p.read{font-size:.85em;color:#555;margin:.2em 0}
nav#toc{font-size:.9em;margin:1em 0;line-height:1.6}
.chart svg{width:100%;height:auto;border:1px solid #eee}
.chart svg text{font-family:"Liberation Sans",Arimo,Arial,Helvetica,sans-serif!important}
.lesson{display:grid;grid-template-columns:max-content 1fr;gap:0 1.2em;align-items:start;margin:.8em 0}
.lesson h3{grid-column:1/3;margin:.2em 0}.lesson svg{grid-row:2/4}.lesson p,.lesson ul{margin:.2em 0}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}
</style></head><body>
<h1>virtbench: {{.Status.Scenario}}</h1>
<p id="headline">{{.Headline}}</p>
{{with .HostLine}}<p id="host-state"{{if not $.Quiet}} class="warn"{{end}}>{{.}}</p>{{end}}
{{if .Summary}}<h2 id="summary">Summary</h2><ul>{{range .Summary}}<li>{{.}}</li>{{end}}</ul>{{end}}
<nav id="toc"><b>Contents:</b> {{range $i, $s := .TOC}}{{if $i}} · {{end}}<a href="#{{index $s 0}}">{{index $s 1}}</a>{{end}} · raw data: <a href="samples.jsonl">samples.jsonl</a>, <a href="results.csv">results.csv</a>, <a href="results.txt">results.txt</a> (benchstat), <a href="env.json">env.json</a>, <a href="run.json">run.json</a></nav>
<p>Run {{.Status.State}}{{if .Status.Reason}} ({{.Status.Reason}}){{end}}; started {{.Status.Started.Format "2006-01-02 15:04:05 MST"}}; {{.Values}} measured values.</p>
{{if .Status.SharedWith}}<p class="warn" id="shared">This run shared the host with other virtbench runs ({{range $i, $o := .Status.SharedWith}}{{if $i}}; {{end}}{{$o}}{{end}}): its host-wide figures (MemAvailable drop, host CPU, capacity) include their instances.</p>{{end}}
{{if .Status.Output}}<p class="warn">{{.Status.Output}}.</p>{{end}}
<h2 id="claims-h">Claims</h2>
<table id="claims"><tr><th class="l">claim</th><th class="l">verdict</th><th class="l">why</th><th class="l">evidence from this run</th><th class="l">caveat</th></tr>
{{range .Claims}}<tr><td class="l">{{.Claim}}</td><td class="l verdict">{{.Verdict}}</td><td class="l">{{.Reason}}</td><td class="l">{{.Evidence}}</td><td class="l">{{.Caveat}}</td></tr>
{{end}}</table>
{{if .DimRows}}<h3 id="dimensions-h">Performance by dimension</h3>
<p>The performance claim on each dimension the run measured: its first result measured under native, a container and a VM, each side's speed relative to native (above 1 is faster) with the range its 95% intervals allow.</p>
<table id="dimensions"><tr>{{range .DimHeader}}<th class="l">{{.}}</th>{{end}}</tr>
{{range .DimRows}}<tr>{{range .}}<td class="l">{{.}}</td>{{end}}</tr>
{{end}}</table>{{end}}
{{if .Lessons}}<h2 id="kinds">Kinds of virtualization in this run</h2>
<p>What isolates the workload in each kind, what it costs, and this run's figures (medians; ranges from the 95% confidence intervals). Each diagram stacks the layers from the workload down to the hardware; the layer outlined in red is the one that isolates it.</p>
<div id="classroom">{{range .Lessons}}<div class="lesson"><h3>{{.Virtualization}}</h3>{{.Diagram}}<p>{{.Text}}</p><ul>{{range .Figures}}<li>{{.}}</li>{{end}}</ul></div>
{{end}}</div>
{{if .DeviceRows}}<h3>paravirtual vs emulated devices</h3><p>{{.DevicesText}}</p>
<table id="devices"><tr>{{range .TechniqueHeader}}<th>{{.}}</th>{{end}}</tr>
{{range .DeviceRows}}<tr>{{range $i, $c := .}}<td{{if lt $i 5}} class="l"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</table>{{with .DevicesNote}}<p id="devices-note">{{.}}</p>{{end}}{{end}}{{end}}
{{if .TechniqueRows}}<h2 id="techniques-h">VM techniques against their baselines</h2>
<p>Pairs of VM variants that differ in one setting: paravirtual (virtio) against emulated devices, a start from a snapshot or a template against a cold boot (and a template against a snapshot), KSM on against off. Above 1 the technique did better (faster, or less memory); the range holds the ratio when each median lies anywhere in its 95% confidence interval; p is the Mann-Whitney U test's.</p>
<table id="techniques"><tr>{{range .TechniqueHeader}}<th>{{.}}</th>{{end}}</tr>
{{range .TechniqueRows}}<tr>{{range $i, $c := .}}<td{{if lt $i 5}} class="l"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</table>{{range .TechniqueNotes}}<p class="technique-note">{{.}}</p>{{end}}{{end}}
{{if .CapRows}}<h2 id="capacity-h">Capacity</h2>
<table id="capacity"><tr>{{range .CapHeader}}<th class="l">{{.}}</th>{{end}}</tr>
{{range .CapRows}}<tr>{{range .}}<td class="l">{{.}}</td>{{end}}</tr>
{{end}}</table>
<p>{{.CapModel}}</p>
{{if .ObjectiveRows}}<h3 id="objective">At the load objective</h3>
<table id="objective-table"><tr>{{range .ObjectiveHeader}}<th class="l">{{.}}</th>{{end}}</tr>
{{range .ObjectiveRows}}<tr>{{range .}}<td class="l">{{.}}</td>{{end}}</tr>
{{end}}</table><p>{{.ObjectiveModel}}</p>{{end}}
{{if .NovaRows}}<h3 id="nova">For OpenStack Nova</h3>
<table id="nova-table"><tr>{{range .NovaHeader}}<th class="l">{{.}}</th>{{end}}</tr>
{{range .NovaRows}}<tr>{{range .}}<td class="l">{{.}}</td>{{end}}</tr>
{{end}}</table><p>{{.NovaModel}} <code>virtbench report RUN_DIR --format runtimeclass</code> writes a Kubernetes RuntimeClass per isolating variant with its overhead.</p>{{end}}{{end}}
{{if .StormRows}}<h2 id="storms-h">Start storms</h2>
<table id="storms"><tr>{{range .StormHeader}}<th class="l">{{.}}</th>{{end}}</tr>
{{range .StormRows}}<tr>{{range .}}<td class="l">{{.}}</td>{{end}}</tr>
{{end}}</table><p>{{.StormModel}}</p>{{end}}
{{if .Density}}<h2 id="density-h">Density sweeps</h2><ul>{{range .Density}}<li>{{.}}</li>{{end}}</ul>
{{if .HeadroomRows}}<h3 id="headroom">Headroom at the top of each sweep</h3>
<table id="headroom-table"><tr>{{range .HeadroomHeader}}<th class="l">{{.}}</th>{{end}}</tr>
{{range .HeadroomRows}}<tr>{{range .}}<td class="l">{{.}}</td>{{end}}</tr>
{{end}}</table><p>{{.HeadroomModel}}</p>{{end}}{{end}}
{{if .Drivers}}<h2 id="drivers-h">What each driver is</h2><dl>{{range .Drivers}}<dt>{{index . 0}}</dt><dd>{{index . 1}}</dd>{{end}}</dl>{{end}}
{{if .Skipped}}<h2>Not run</h2><ul>{{range .Skipped}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .RepsCapped}}<h2 id="reps-capped">Repetitions capped</h2><p>{{.RepsCappedText}}</p><ul class="warn">{{range .RepsCapped}}<li>{{.}}</li>{{end}}</ul>{{end}}
<h2 id="charts">Charts</h2>
{{if .Charts}}<div id="chart-grid">{{range .Charts}}<div class="chart" id="chart-{{.Name}}"><h3>{{.Title}}</h3>{{with .Read}}<p class="read">{{.}}</p>{{end}}{{.SVG}}</div>
{{end}}</div>{{else}}<p>No chart: the run has no measured samples.</p>{{end}}
{{if .Ratios}}<h2 id="ratios-h">Relative to {{.Baseline}}</h2>
<p>Measured in the same run, drivers taking turns rep by rep; above 1 is faster than {{.Baseline}}. The range holds the ratio when each median lies anywhere in its 95% confidence interval; p is the Mann-Whitney U test's.</p>
<table id="ratios"><tr>{{range .RatioHeader}}<th>{{.}}</th>{{end}}</tr>
{{range .Ratios}}<tr>{{range $i, $c := .}}<td{{if or (lt $i 3) (eq $i 6)}} class="l"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</table>
{{if .Faster}}<p>Where an isolated instance beats native beyond the range, or falls behind it for a reason of its setup, what in its setup could explain it:</p><ul id="faster">{{range .Faster}}<li>{{.}}</li>{{end}}</ul>{{end}}{{end}}
<h2 id="results-h">Results</h2>
<table id="results"><tr>{{range .Header}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range $i, $c := .}}<td{{if lt $i 4}} class="l"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</table>
<h2 id="failures">Failures</h2>
{{if .Failures}}<ul class="fail">{{range .Failures}}<li>{{.}}</li>{{end}}</ul>{{else}}<p>None.</p>{{end}}
<h2 id="provenance-h">Provenance</h2>
<dl id="provenance">{{range .Provenance}}<dt>{{index . 0}}</dt><dd>{{index . 1}}</dd>{{end}}</dl>
</body></html>
`))

// lessonView is a lesson with its layer diagram.
type lessonView struct {
	analysis.Lesson
	Diagram template.HTML // drawn by layerDiagram, its text escaped there
}

// chartView is a chart as the page embeds it.
type chartView struct {
	Name, Title, Read string
	SVG               template.HTML
}

// htmlPage is what report.html's template reads.
type htmlPage struct {
	Values          int
	Status          results.Status
	Headline        string
	HostLine        string
	Quiet           bool
	Baseline        string
	Summary         []string
	TOC             [][2]string
	Skipped         []string
	RepsCapped      []string
	RepsCappedText  string
	Charts          []chartView
	Header          []string
	Rows            [][]string
	Failures        []string
	Provenance      [][2]string
	Claims          []analysis.Claim
	DimHeader       []string
	DimRows         [][]string
	CapHeader       []string
	CapRows         [][]string
	CapModel        string
	HeadroomHeader  []string
	HeadroomRows    [][]string
	HeadroomModel   string
	NovaHeader      []string
	NovaRows        [][]string
	NovaModel       string
	StormHeader     []string
	StormRows       [][]string
	StormModel      string
	Density         []string
	Drivers         [][2]string
	RatioHeader     []string
	Ratios          [][]string
	Faster          []string
	Lessons         []lessonView
	DevicesText     string
	DevicesNote     string
	ObjectiveHeader []string
	ObjectiveRows   [][]string
	ObjectiveModel  string
	TechniqueHeader []string
	TechniqueRows   [][]string
	TechniqueNotes  []string
	DeviceRows      [][]string
}

// WriteHTML writes report.html: one self-contained file, inline SVG and CSS,
// no script and no network access.
func WriteHTML(w io.Writer, a *analysis.Analysis, charts []Chart) error {
	r := a.Run
	data := htmlPage{HostLine: hostLine(a.Host), Quiet: a.Host.Quiet, Values: measuredValues(r.Measurements), Status: r.Status, Headline: Headline(a.Index, a.Baseline), Baseline: a.Baseline, Header: tableHeader, Rows: tableRows(a.Index),
		RatioHeader: ratioHeader, Ratios: ratioRows(a.Ratios),
		Failures: r.Status.Outcome.Failures, Claims: a.Claims, DimHeader: dimensionHeader, DimRows: dimensionRows(a.Claims),
		CapHeader: capacityHeader, CapRows: capacityRows(a.Capacity), CapModel: CapacityModel,
		ObjectiveHeader: objectiveHeader, ObjectiveRows: objectiveRows(a.Capacity), ObjectiveModel: ObjectiveModel,
		NovaHeader: novaHeader, NovaRows: novaRows(a.Nova()), NovaModel: NovaModel,
		StormHeader: stormHeader, StormRows: stormRows(a.Storms()), StormModel: StormModel,
		HeadroomHeader: headroomHeader, HeadroomRows: headroomRows(a.Headrooms()), HeadroomModel: HeadroomModel,
		RepsCapped: r.Status.Outcome.RepsCapped, RepsCappedText: RepsCappedText,
		Faster: setupNotes(a.Ratios), DevicesText: devicesText, DevicesNote: a.DevicesNote, TechniqueHeader: techniqueHeader, TechniqueRows: techniqueRows(a.Techniques, nil), TechniqueNotes: a.TechniqueNotes, DeviceRows: techniqueRows(a.Techniques, func(c analysis.Comparison) bool { return c.Devices })}
	for _, l := range a.Lessons {
		data.Lessons = append(data.Lessons, lessonView{Lesson: l, Diagram: template.HTML(layerDiagram(l.Virtualization, l.Layers))})
	}
	data.Summary = Summary(a)
	data.TOC = tableOfContents(a, len(data.StormRows) > 0)
	for k, v := range r.Status.Outcome.Density {
		data.Density = append(data.Density, k+": "+v)
	}
	for _, sc := range a.Sweeps {
		data.Density = append(data.Density, sc.String())
	}
	sort.Strings(data.Density)
	for _, d := range r.Status.Outcome.Virtualizations() {
		data.Drivers = append(data.Drivers, d)
	}
	for d, why := range r.Status.Outcome.Skipped {
		data.Skipped = append(data.Skipped, d+": "+why)
	}
	sort.Strings(data.Skipped)
	for _, c := range charts {
		data.Charts = append(data.Charts, chartView{Name: c.Name, Title: c.Title, Read: chartReadingOf(c.Name), SVG: c.Inline()})
	}
	data.Provenance = provenanceRows(r.Provenance, r.Status.Outcome.Labels)
	return executeSafe(w, htmlTmpl, data)
}

// tableOfContents lists the page's sections that a has something for.
func tableOfContents(a *analysis.Analysis, storms bool) [][2]string {
	toc := [][2]string{{"claims-h", "claims"}}
	for _, sec := range []struct {
		show     bool
		id, name string
	}{
		{len(a.Lessons) > 0, "kinds", "kinds of virtualization"}, {len(a.Techniques) > 0, "techniques-h", "VM techniques"},
		{len(a.Capacity) > 0, "capacity-h", "capacity"}, {storms, "storms-h", "start storms"}, {len(a.Run.Status.Outcome.Density) > 0, "density-h", "density"},
		{true, "charts", "charts"}, {len(a.Ratios) > 0, "ratios-h", "relative to native"}, {true, "results-h", "results"},
		{true, "failures", "failures"}, {true, "provenance-h", "provenance"},
	} {
		if sec.show {
			toc = append(toc, [2]string{sec.id, sec.name})
		}
	}
	return toc
}

// provenanceRows are the provenance table's rows: the host, its limits,
// the tools' versions and what each variant's instances said of how they
// ran.
func provenanceRows(p results.Provenance, labels map[string]map[string]string) [][2]string {
	rows := [][2]string{
		{"host", p.Hostname}, {"kernel", p.Kernel}, {"os", p.OS}, {"virtualization", p.Virtualized},
		{"cpu", fmt.Sprintf("%s, %d cores", p.CPUModel, p.Cores)}, {"memory", units.Format(float64(p.MemoryBytes), "B")},
		{"limits virtbench ran under", LimitsText(p)},
		{"cgroup", p.CgroupVersion}, {"ksm", p.KSM}, {"/dev/kvm", p.KVM}, {"CPU vulnerability mitigations", p.Mitigations},
		{"tasks", fmt.Sprintf("%d in use at the start, limit %d (pid_max, threads-max)", p.TasksInUse, p.PidsMax)},
		{"free disk for instances", units.Format(float64(p.DiskFreeBytes), "B")},
		{"virtbench", p.Virtbench}, {"go", p.Go}, {"scenario", p.Scenario + " " + p.ScenarioFile}, {"scenario sha256", p.ScenarioHash},
	}
	for _, k := range slices.Sorted(maps.Keys(p.Tools)) {
		rows = append(rows, [2]string{k, p.Tools[k]})
	}
	for d, ls := range labels {
		var kv []string
		for k, v := range ls {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		rows = append(rows, [2]string{d + " ran with", strings.Join(kv, " ")})
	}
	return rows
}

// executeSafe executes t with data and writes the page with any control
// character the run's records brought in escaped (textsafe.Text):
// html/template escapes markup, not those.
func executeSafe(w io.Writer, t *template.Template, data any) error {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return err
	}
	_, err := io.WriteString(w, textsafe.Text(b.String()))
	return err
}

// chartReadingOf says how to read the chart name: the perf-ratio charts of
// each dimension read as the one of every result.
func chartReadingOf(name string) string {
	if strings.HasPrefix(name, "perf-ratio-") {
		name = "perf-ratio"
	}
	return chartReading[name]
}

// chartReading says, per chart, in one sentence how to read it.
var chartReading = map[string]string{
	"startup":           "Each box spans the middle half of the starts (line: the median; whiskers: the rest); lower is better, and the axis is logarithmic, so equal steps are equal ratios.",
	"teardown":          "How long stopping one instance took, boxes as above; lower is better.",
	"memory":            "The memory each instance added, its proportional set size summed over its host processes; lower is better.",
	"startup-phases":    "Where the start goes: each bar stacks the share of each phase the host can see, from the driver's first step to READY; the label gives the median start itself.",
	"boot-timeline":     "Where a VM's boot goes, per VM variant: each stage ends when the guest kernel logged its line, placed on the vCPU's own time line (the time the virtual CPU ran, which QEMU starts at 0). The guest kernel's clock starts late and stands still until a real clocksource takes over, so the first stage holds everything before its clock counted; the host's start to READY adds the VMM's start before and the console line after.",
	"disk":              "Disk for ten instances: the shared image counted once, the tools layer (fio, iperf3, Redis, nginx) counted once where the run used it, plus ten writable layers; lower is better.",
	"perf-ratio":        "Each workload result divided by native's in the same run: 1 is native speed, above is faster; the whiskers span the ratios the 95% intervals allow.",
	"density-memory":    "How much memory each instance costs as more run at once: flat lines mean a fixed cost per instance; lower is better.",
	"density-available": "The host's MemAvailable as instances were added; the sweep stops before the dashed floor.",
	"density-latency":   "The median start of the instances each step added: a rising line shows the host getting crowded.",
	"density-cpu":       "The CPU one idle instance keeps busy as more run: what bounds capacity when memory does not.",
	"storm-latency":     "Each instance's start to READY when that many start at once (solid: the median, dashed: the 99th percentile) against the count on the x axis; the axis is logarithmic: a flat line is a host that starts them all as fast as one, a line rising with the count a host whose starts queue.",
	"knee-p99":          "Each instance's 99th percentile latency as more instances take the load at once, one line per variant: the knee is where a line crosses the objective; the axis is logarithmic.",
	"knee-rate":         "Each instance's achieved rate as more take the load at once: a line falling below the offered rate is a host that no longer keeps up.",
	"density-reach":     "How many instances each density sweep reached, and what stopped it, beside the count the capacity model gives for this host: bars far apart mean the model's costs per instance are off.",
}

// measuredValues counts the values of m.
func measuredValues(m *results.Measurements) int {
	n := 0
	for _, sr := range m.Series {
		n += len(sr.Values)
	}
	return n
}

// Summary says in a few lines who won what in a run: the fastest start,
// the smallest memory, capacity, the VM techniques and the claims' verdicts.
func Summary(a *analysis.Analysis) []string {
	var out []string
	best := func(metric, what, unit string) {
		if s, ok := a.Index.Least(metric); ok {
			out = append(out, fmt.Sprintf("%s: %s, %s (median of an idle instance).", what, s.Variant, units.Format(s.Median, unit)))
		}
	}
	best(results.MetricStartup, "Fastest start to READY", "sec")
	best(results.MetricPSS, "Smallest memory (PSS)", "B")
	var caps []string
	for _, c := range a.HereCapacity() {
		caps = append(caps, fmt.Sprintf("%s %s (%s binds)", c.Variant, formatCount(c.Idle), c.Binding))
	}
	if len(caps) > 0 {
		out = append(out, "Idle instances that fit this host: "+strings.Join(caps, ", ")+".")
	}
	for _, c := range a.Techniques {
		if c.P < analysis.Alpha && (c.Metric == results.MetricStartup || c.Metric == results.MetricHostMemDrop || c.Devices) {
			out = append(out, fmt.Sprintf("%s (%s=%s) does %.2f× better than %s on %s %s [%.2f-%.2f].", c.Technique, c.Aspect, c.Value, c.Ratio, c.Baseline, c.Workload, c.Metric, c.Lo, c.Hi))
		}
	}
	for _, c := range a.Claims {
		out = append(out, fmt.Sprintf("%q %s.", c.Claim, c.Verdict))
	}
	return out
}

// Headline states the startup medians in one sentence, relative to the
// baseline (native) where it ran.
func Headline(x *analysis.Index, baseline string) string {
	var native float64
	for _, s := range x.Of(baseline, results.MetricStartup) {
		if s.Instances == 1 {
			native = s.Median
			break
		}
	}
	var parts []string
	for _, v := range x.Variants(results.MetricStartup, false) {
		s := x.Of(v, results.MetricStartup)[0]
		part := fmt.Sprintf("%s %s", v, units.Format(s.Median, s.Unit))
		var notes []string
		if native > 0 && v != baseline {
			more, d := "more", s.Median-native
			if d < 0 {
				more, d = "less", -d
			}
			notes = append(notes, fmt.Sprintf("%.1f× %s, %s %s", s.Median/native, baseline, units.Format(d, s.Unit), more))
		}
		if g := x.Median(v, results.MetricGuestBoot); g > 0 {
			notes = append(notes, fmt.Sprintf("%.2f× its guest boot", s.Median/g))
		}
		if len(notes) > 0 {
			part += " (" + strings.Join(notes, ", ") + ")"
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		for _, s := range x.Metric(results.MetricDensityStartup) {
			if s.Instances == 1 {
				parts = append(parts, fmt.Sprintf("%s %s", s.Variant, units.Format(s.Median, s.Unit)))
			}
		}
		if len(parts) > 0 {
			return "Start to READY of the first instance of each density sweep: " + strings.Join(parts, ", ") + "."
		}
		for _, v := range x.Variants(results.MetricStormRatePerCore, false) {
			if s, ok := x.Largest(v, results.MetricStormRatePerCore); ok {
				parts = append(parts, fmt.Sprintf("%s %s at %d at once", v, units.Format(s.Median, ""), s.Instances))
			}
		}
		if len(parts) > 0 {
			return "Start storms, instances READY per second per host core: " + strings.Join(parts, ", ") + "."
		}
		return "No startup was measured."
	}
	return "Median start to READY: " + strings.Join(parts, ", ") + "."
}
