// Package analysis reads what a run or a fleet of runs left and judges
// it, once: it loads a run directory with the vocabulary the run recorded
// (so it links no driver), indexes the summaries with the named lookups
// every judgement uses (Index: one idle instance, the most instances of
// the baseline workload, the largest count), and computes capacity, the
// claims, ratios to the baseline, the VM techniques, the classroom's
// lessons, density sweeps against the model, comparisons of runs and a
// fleet's totals. It returns values; package reports renders them.
package analysis
