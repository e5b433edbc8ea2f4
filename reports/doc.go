// Package reports renders a run's results: the terminal and Markdown
// tables, results.txt in the Go benchmark format (for benchstat),
// results.csv, summary.json, charts and the self-contained report.html.
// It reads result records (samples, summaries, provenance), never drivers.
package reports
