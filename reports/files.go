package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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
	// The tables are streamed to their files: results.txt holds every
	// value, megabytes in a density sweep of thousands.
	files = append(files,
		results.File{Name: BenchFile, Write: func(w io.Writer) error { return WriteBenchfmt(w, r) }},
		results.File{Name: CSVFile, Write: func(w io.Writer) error { return WriteCSV(w, a.Index.Summaries) }},
		results.File{Name: MarkdownFile, Write: func(w io.Writer) error { return WriteMarkdownReport(w, a) }},
	)
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
func WriteMarkdownReport(w io.Writer, a *analysis.Analysis) error {
	if line := hostLine(a.Host); line != "" {
		fmt.Fprintf(w, "%s\n\n", textsafe.Markdown(line))
	}
	if err := WriteMarkdown(w, a.Index); err != nil {
		return err
	}
	if len(a.Ratios) > 0 {
		io.WriteString(w, "\n## Relative to native (same run; above 1 is faster)\n\n")
		if err := WriteRatiosMarkdown(w, a.Ratios); err != nil {
			return err
		}
		for _, n := range setupNotes(a.Ratios) {
			fmt.Fprintf(w, "\n- %s\n", textsafe.Markdown(n))
		}
	}
	if err := writeLessonsMarkdown(w, a); err != nil {
		return err
	}
	if len(a.Techniques) > 0 {
		io.WriteString(w, "\n## VM techniques against their baselines (above 1: the technique did better)\n\n")
		if err := writeMarkdownTable(w, techniqueHeader, techniqueRows(a.Techniques, nil)); err != nil {
			return err
		}
		for _, n := range a.TechniqueNotes {
			fmt.Fprintf(w, "\n%s\n", textsafe.Markdown(n))
		}
	}
	io.WriteString(w, "\n## Claims\n\n")
	if err := WriteClaims(w, a.Claims); err != nil {
		return err
	}
	if rows := dimensionRows(a.Claims); len(rows) > 0 {
		io.WriteString(w, "\n### Performance by dimension\n\n")
		if err := writeMarkdownTable(w, dimensionHeader, rows); err != nil {
			return err
		}
	}
	if err := writeMarkdownSection(w, "## Capacity", capacityHeader, capacityRows(a.Capacity), CapacityModel); err != nil {
		return err
	}
	if err := writeMarkdownSection(w, "## Start storms", stormHeader, stormRows(a.Storms()), StormModel); err != nil {
		return err
	}
	writeRepsCappedMarkdown(w, a.Run.Status.Outcome.RepsCapped)
	if err := writeMarkdownSection(w, "## Headroom at the top of each density sweep", headroomHeader, headroomRows(a.Headrooms()), HeadroomModel); err != nil {
		return err
	}
	return writeMarkdownSection(w, "### For OpenStack Nova", novaHeader, novaRows(a.Nova()), NovaModel)
}

// writeMarkdownSection writes a heading, a table and the model that
// explains it, when the table has rows.
func writeMarkdownSection(w io.Writer, heading string, header []string, rows [][]string, model string) error {
	if len(rows) == 0 {
		return nil
	}
	io.WriteString(w, "\n"+heading+"\n\n")
	if err := writeMarkdownTable(w, header, rows); err != nil {
		return err
	}
	io.WriteString(w, "\n"+model+"\n")
	return nil
}

// writeLessonsMarkdown writes the lessons of the kinds of virtualization
// in the run, with the paravirtual against emulated devices' table.
func writeLessonsMarkdown(w io.Writer, a *analysis.Analysis) error {
	if len(a.Lessons) == 0 {
		return nil
	}
	io.WriteString(w, "\n## Kinds of virtualization in this run\n")
	for _, l := range a.Lessons {
		fmt.Fprintf(w, "\n### %s\n\n%s\n\n", textsafe.Markdown(l.Virtualization), textsafe.Markdown(l.Text))
		for _, f := range l.Figures {
			fmt.Fprintf(w, "- %s\n", textsafe.Markdown(f))
		}
	}
	rows := techniqueRows(a.Techniques, func(c analysis.Comparison) bool { return c.Devices })
	if len(rows) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\n### paravirtual vs emulated devices\n\n%s\n\n", devicesText)
	if err := writeMarkdownTable(w, techniqueHeader, rows); err != nil {
		return err
	}
	if a.DevicesNote != "" {
		fmt.Fprintf(w, "\n%s\n", textsafe.Markdown(a.DevicesNote))
	}
	return nil
}

// writeRepsCappedMarkdown lists the trials reps: auto capped, if any.
func writeRepsCappedMarkdown(w io.Writer, capped []string) {
	if len(capped) == 0 {
		return
	}
	io.WriteString(w, "\n## Repetitions capped\n\n"+RepsCappedText+"\n\n")
	for _, c := range capped {
		fmt.Fprintf(w, "- %s\n", textsafe.Markdown(c))
	}
}

// RepsCappedText introduces the trials reps: auto stopped at their most
// repetitions.
const RepsCappedText = "reps: auto repeated these trials as often as the scenario allows without knowing their medians within the width it asked for; their figures are less sure than the others':"
