package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"

	"virtbench/analysis"
	"virtbench/internal/results"
	"virtbench/internal/textsafe"
)

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
func WriteAll(a *analysis.Analysis) (string, error) {
	r := a.Run
	var files []results.File
	for _, f := range []struct {
		name string
		v    any
	}{{SummaryFile, a.Index.Summaries}, {ClaimsFile, a.Claims}, {CapacityFile, capacityViews(a.Capacity)}} {
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
		{BenchFile, func(b *bytes.Buffer) error { return WriteBenchfmt(b, r) }},
		{CSVFile, func(b *bytes.Buffer) error { return WriteCSV(b, a.Index.Summaries) }},
		{MarkdownFile, func(b *bytes.Buffer) error { return WriteMarkdownReport(b, a) }},
	} {
		var b bytes.Buffer
		if err := f.write(&b); err != nil {
			return "", fmt.Errorf("reports: %s: %w", f.name, err)
		}
		files = append(files, results.File{Name: f.name, Data: b.Bytes()})
	}
	charts, err := Charts(a)
	if err != nil {
		return "", err
	}
	for _, c := range charts {
		files = append(files, c.Files()...)
	}
	var b bytes.Buffer
	if err := WriteHTML(&b, a, charts); err != nil {
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
func WriteMarkdownReport(b *bytes.Buffer, a *analysis.Analysis) error {
	if line := hostLine(a.Host); line != "" {
		fmt.Fprintf(b, "%s\n\n", textsafe.Markdown(line))
	}
	if err := WriteMarkdown(b, a.Index); err != nil {
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
			fmt.Fprintf(b, "\n### %s\n\n%s\n\n", textsafe.Markdown(l.Virtualization), textsafe.Markdown(l.Text))
			for _, f := range l.Figures {
				fmt.Fprintf(b, "- %s\n", textsafe.Markdown(f))
			}
		}
		if rows := techniqueRows(a.Techniques, func(c analysis.Comparison) bool { return c.Devices }); len(rows) > 0 {
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
	if hs := a.Headrooms(); len(hs) > 0 {
		b.WriteString("\n## Headroom at the top of each density sweep\n\n")
		if err := writeMarkdownTable(b, headroomHeader, headroomRows(hs)); err != nil {
			return err
		}
		b.WriteString("\n" + HeadroomModel + "\n")
	}
	if nova := a.Nova(); len(nova) > 0 {
		b.WriteString("\n### For OpenStack Nova\n\n")
		if err := writeMarkdownTable(b, novaHeader, novaRows(nova)); err != nil {
			return err
		}
		b.WriteString("\n" + NovaModel + "\n")
	}
	return nil
}
