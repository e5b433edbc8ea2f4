package reports

import (
	"bytes"
	"path/filepath"

	"virtbench/bench"
)

// Run is everything a report is made from; all of it is read back from a
// run directory, so reports can be regenerated from the raw samples.
type Run struct {
	Dir        string
	Provenance bench.Provenance
	Status     bench.Status
	Samples    []bench.Sample
	Summaries  []bench.Summary
	// Plan, when set, is a host size to estimate capacity for besides
	// this host.
	Plan *Host
}

// Hosts returns this run's host and the planned one, for capacity estimates.
func (r *Run) Hosts() []Host {
	hs := []Host{{Name: "this host", MemoryBytes: r.Provenance.MemoryBytes, CPUs: r.Provenance.Cores}}
	if r.Plan != nil {
		hs = append(hs, *r.Plan)
	}
	return hs
}

// Load reads a run directory: samples.jsonl, env.json and run.json.
func Load(dir string) (*Run, error) {
	r := &Run{Dir: dir}
	var err error
	if r.Samples, err = bench.ReadSamples(filepath.Join(dir, bench.SamplesFile)); err != nil {
		return nil, err
	}
	if err := bench.ReadJSON(dir, bench.EnvFile, &r.Provenance); err != nil {
		return nil, err
	}
	if err := bench.ReadJSON(dir, bench.StatusFile, &r.Status); err != nil {
		return nil, err
	}
	r.Summaries = bench.Summarize(r.Samples)
	return r, nil
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

// WriteAll writes every derived file into the run directory and returns
// the path of report.html.
func WriteAll(r *Run) (string, error) {
	if err := bench.WriteJSON(r.Dir, SummaryFile, r.Summaries); err != nil {
		return "", err
	}
	if err := bench.WriteJSON(r.Dir, ClaimsFile, Claims(r.Summaries, r.Provenance.MemoryBytes)); err != nil {
		return "", err
	}
	if err := bench.WriteJSON(r.Dir, CapacityFile, EstimateCapacity(r.Summaries, r.Hosts())); err != nil {
		return "", err
	}
	files := []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{BenchFile, func(b *bytes.Buffer) error { return WriteBenchfmt(b, r.Provenance, r.Samples) }},
		{CSVFile, func(b *bytes.Buffer) error { return WriteCSV(b, r.Summaries) }},
		{MarkdownFile, func(b *bytes.Buffer) error {
			if err := WriteMarkdown(b, r.Summaries); err != nil {
				return err
			}
			if rs := PerfRatios(r.Samples); len(rs) > 0 {
				b.WriteString("\n## Relative to native (same run; above 1 is faster)\n\n")
				if err := WriteRatiosMarkdown(b, rs); err != nil {
					return err
				}
			}
			b.WriteString("\n## Claims\n\n")
			return WriteClaims(b, Claims(r.Summaries, r.Provenance.MemoryBytes))
		}},
	}
	for _, f := range files {
		var b bytes.Buffer
		if err := f.write(&b); err != nil {
			return "", err
		}
		if err := bench.WriteFileAtomic(filepath.Join(r.Dir, f.name), b.Bytes()); err != nil {
			return "", err
		}
	}
	charts, err := Charts(r.Samples)
	if err != nil {
		return "", err
	}
	for _, c := range charts {
		for ext, data := range map[string][]byte{".svg": c.SVG, ".png": c.PNG} {
			if err := bench.WriteFileAtomic(filepath.Join(r.Dir, c.Name+ext), data); err != nil {
				return "", err
			}
		}
	}
	var b bytes.Buffer
	if err := WriteHTML(&b, r, charts); err != nil {
		return "", err
	}
	path := filepath.Join(r.Dir, ReportFile)
	if err := bench.WriteFileAtomic(path, b.Bytes()); err != nil {
		return "", err
	}
	return path, nil
}
