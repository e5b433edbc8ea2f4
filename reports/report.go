package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"virtbench/internal/results"
	"virtbench/internal/textsafe"
)

// Run is everything a report is made from; all of it is read back from a
// run directory, so reports can be regenerated from the raw samples.
type Run struct {
	Dir        string
	Provenance results.Provenance
	Status     results.Status
	Samples    []results.Sample
	Summaries  []results.Summary
	// Plan, when set, is a host size to estimate capacity for besides
	// this host.
	Plan *Host
	// Warnings say what was wrong with the run directory but could be
	// read around (a torn last line).
	Warnings []string
}

// ThisHost is the name of the run's own host in capacity estimates.
const ThisHost = "this host"

// Hosts returns this run's host and the planned one, for capacity
// estimates. The planned host has this host's pid limit and free disk
// unless it says otherwise.
func (r *Run) Hosts() []Host {
	p := r.Provenance
	here := Host{Name: ThisHost, Ran: true, MemoryBytes: p.MemoryBytes, MemAvailableBytes: p.MemAvailableBytes, CPUs: p.Cores, CPULimit: p.CPULimitCores,
		PidsMax: p.PidsMax, TasksInUse: p.TasksInUse, DiskFreeBytes: p.DiskFreeBytes}
	if p.MemoryLimitBytes > 0 {
		// The budget is what virtbench may use: its cgroup's limit.
		here.MemoryBytes = min(here.MemoryBytes, p.MemoryLimitBytes)
	}
	hs := []Host{here}
	if r.Plan != nil {
		plan := *r.Plan
		if plan.PidsMax == 0 {
			plan.PidsMax, plan.TasksInUse = here.PidsMax, here.TasksInUse
		}
		if plan.DiskFreeBytes == 0 {
			plan.DiskFreeBytes = here.DiskFreeBytes
		}
		hs = append(hs, plan)
	}
	return hs
}

// Analysis is what the reports say about a run, computed once from its
// samples; every output (terminal, Markdown, CSV, benchfmt, JSON, charts,
// HTML) renders it.
type Analysis struct {
	Summaries []results.Summary
	// Roles are the variants' roles as the run recorded them, and
	// Baseline the name of the one the others are set against ("" when
	// none ran).
	Roles    map[string]results.Role
	Baseline string
	// Ratios are the workload results relative to the baseline.
	Ratios []Ratio
	// Capacity has a row per driver and host (this one, and the planned
	// one where given).
	Capacity []Capacity
	// Sweeps set what each density sweep reached beside the model's count.
	Sweeps []SweepCheck
	// Claims are judged on this host's capacity rows and the summaries.
	Claims []Claim
	// Techniques compares VM variants that differ in one aspect: virtio
	// against emulated devices, snapshot or template against cold boot,
	// KSM on against off; TechniqueNotes say what the compared techniques
	// share and what follows for isolation.
	Techniques     []Comparison
	TechniqueNotes []string
	// Lessons are the classroom section: what each kind of
	// virtualization that ran is, with its figures; DevicesNote explains
	// a device comparison that found no difference.
	Lessons     []Lesson
	DevicesNote string
}

// Analyze computes r's Analysis.
func Analyze(r *Run) *Analysis {
	o := r.Status.Outcome
	a := &Analysis{Summaries: r.Summaries, Roles: o.Roles(), Baseline: o.Baseline(), Capacity: EstimateCapacity(r.Summaries, r.Hosts())}
	a.Ratios = PerfRatios(r.Samples, a.Baseline)
	for i, rt := range a.Ratios {
		if !rt.Same && rt.Lo > 1 && a.Roles[rt.Driver].Class != results.ClassNone {
			a.Ratios[i].Note = explainFaster(rt, a.Roles[rt.Driver], o.Labels[rt.Driver], r.Provenance)
		}
	}
	var here []Capacity
	for _, c := range a.Capacity {
		if c.Host == ThisHost {
			here = append(here, c)
		}
	}
	a.Sweeps = SweepChecks(r.Summaries, a.Capacity)
	a.Claims = claims(claimContext{sums: r.Summaries, roles: a.Roles, ratios: a.Ratios, caps: here})
	a.Techniques = Techniques(r.Samples, o.Labels, a.Roles)
	a.TechniqueNotes = techniqueNotes(a.Techniques)
	a.Lessons = Classroom(r, a)
	a.DevicesNote = devicesNote(a.Techniques, a.Roles)
	return a
}

// ErrNotRun reports a directory that holds no run.
var ErrNotRun = errors.New("not a run directory (no samples.jsonl, env.json or run.json)")

// Load reads a run directory: samples.jsonl, env.json and run.json. A
// torn last line of samples.jsonl is dropped and noted in Warnings.
func Load(dir string) (*Run, error) {
	r := &Run{Dir: dir}
	if info, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	} else if !info.IsDir() {
		return nil, fmt.Errorf("reports: %s: %w", dir, ErrNotRun)
	}
	if !isRunDir(dir) {
		return nil, fmt.Errorf("reports: %s: %w", dir, ErrNotRun)
	}
	var err error
	r.Samples, err = results.ReadSamples(filepath.Join(dir, results.SamplesFile))
	switch {
	case errors.Is(err, results.ErrTornLine):
		r.Warnings = append(r.Warnings, err.Error())
	case err != nil:
		return nil, err
	}
	if err := results.ReadJSON(dir, results.EnvFile, &r.Provenance); err != nil {
		return nil, err
	}
	if err := results.ReadJSON(dir, results.StatusFile, &r.Status); err != nil {
		return nil, err
	}
	if r.Status.State == results.StateRunning {
		r.Warnings = append(r.Warnings, Unfinished(r.Status))
	}
	for _, why := range results.Exclude(r.Samples) {
		r.Warnings = append(r.Warnings, "a trial's samples are left out of the summaries: "+why)
	}
	r.Summaries = results.Summarize(r.Samples)
	return r, nil
}

// Unfinished says that a run's records are those of a run still going (or
// of a virtbench that died before it could say how it ended).
func Unfinished(st results.Status) string {
	return fmt.Sprintf("the run is unfinished: run.json says it is still running (PID %d, started %s), so this covers only what it measured so far, or until its virtbench died (virtbench clean marks such a run)",
		st.PID, st.Started.Format(time.RFC3339))
}

// Output file names in a run directory.
const (
	SummaryFile  = "summary.json"
	ClaimsFile   = "claims.json"
	CapacityFile = "capacity.json"
	BenchFile    = "results.txt"
	CSVFile      = "results.csv"
	MarkdownFile = "results.md"
	ReportFile   = "report.html"
)

// WriteAll writes every derived file of a into the run directory and
// returns the path of report.html.
//
// Every file is rendered before any is written, and all are written
// together (results.WriteFilesAtomic): a failure leaves the directory's
// earlier derived files as they were, never some of them new.
func WriteAll(r *Run, a *Analysis) (string, error) {
	var files []results.File
	for _, f := range []struct {
		name string
		v    any
	}{{SummaryFile, a.Summaries}, {ClaimsFile, a.Claims}, {CapacityFile, a.Capacity}} {
		b, err := json.MarshalIndent(f.v, "", "  ")
		if err != nil {
			return "", fmt.Errorf("reports: encode %s: %w", f.name, err)
		}
		files = append(files, results.File{Name: f.name, Data: append(b, '\n')})
	}
	for _, f := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{BenchFile, func(b *bytes.Buffer) error { return WriteBenchfmt(b, r.Provenance, r.Samples) }},
		{CSVFile, func(b *bytes.Buffer) error { return WriteCSV(b, a.Summaries) }},
		{MarkdownFile, func(b *bytes.Buffer) error { return WriteMarkdownReport(b, a) }},
	} {
		var b bytes.Buffer
		if err := f.write(&b); err != nil {
			return "", fmt.Errorf("reports: %s: %w", f.name, err)
		}
		files = append(files, results.File{Name: f.name, Data: b.Bytes()})
	}
	charts, err := Charts(r.Samples, a.Ratios, a.Baseline, a.Sweeps)
	if err != nil {
		return "", err
	}
	for _, c := range charts {
		files = append(files, c.Files()...)
	}
	var b bytes.Buffer
	if err := WriteHTML(&b, r, a, charts); err != nil {
		return "", err
	}
	files = append(files, results.File{Name: ReportFile, Data: b.Bytes()})
	if err := results.WriteFilesAtomic(r.Dir, files); err != nil {
		return "", err
	}
	return filepath.Join(r.Dir, ReportFile), nil
}

// WriteMarkdownReport writes results.md: the summaries, the ratios to
// native, the claims and the capacity.
func WriteMarkdownReport(b *bytes.Buffer, a *Analysis) error {
	if err := WriteMarkdown(b, a.Summaries); err != nil {
		return err
	}
	if len(a.Ratios) > 0 {
		b.WriteString("\n## Relative to native (same run; above 1 is faster)\n\n")
		if err := WriteRatiosMarkdown(b, a.Ratios); err != nil {
			return err
		}
		for _, n := range fasterNotes(a.Ratios) {
			fmt.Fprintf(b, "\n- %s\n", textsafe.Markdown(n))
		}
	}
	if len(a.Lessons) > 0 {
		b.WriteString("\n## Kinds of virtualization in this run\n")
		for _, l := range a.Lessons {
			fmt.Fprintf(b, "\n### %s\n\n%s\n\n", textsafe.Markdown(l.Kind), textsafe.Markdown(l.Text))
			for _, f := range l.Figures {
				fmt.Fprintf(b, "- %s\n", textsafe.Markdown(f))
			}
		}
		if rows := techniqueRows(a.Techniques, devices); len(rows) > 0 {
			fmt.Fprintf(b, "\n### paravirtual vs emulated devices\n\n%s\n\n", devicesText)
			if err := writeMarkdownTable(b, techniqueHeader, rows); err != nil {
				return err
			}
			if a.DevicesNote != "" {
				fmt.Fprintf(b, "\n%s\n", textsafe.Markdown(a.DevicesNote))
			}
		}
	}
	if len(a.Techniques) > 0 {
		b.WriteString("\n## VM techniques against their baselines (above 1: the technique did better)\n\n")
		if err := writeMarkdownTable(b, techniqueHeader, techniqueRows(a.Techniques, nil)); err != nil {
			return err
		}
		for _, n := range a.TechniqueNotes {
			fmt.Fprintf(b, "\n%s\n", textsafe.Markdown(n))
		}
	}
	b.WriteString("\n## Claims\n\n")
	if err := WriteClaims(b, a.Claims); err != nil {
		return err
	}
	if rows := dimensionRows(a.Claims); len(rows) > 0 {
		b.WriteString("\n### Performance by dimension\n\n")
		if err := writeMarkdownTable(b, dimensionHeader, rows); err != nil {
			return err
		}
	}
	if len(a.Capacity) > 0 {
		b.WriteString("\n## Capacity\n\n")
		if err := writeMarkdownTable(b, capacityHeader, capacityRows(a.Capacity)); err != nil {
			return err
		}
		b.WriteString("\n" + CapacityModel + "\n")
	}
	return nil
}
