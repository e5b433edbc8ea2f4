// Package results is what a run leaves and what every report reads: the
// raw Sample and its store (samples.jsonl), the statistics that summarise
// samples (Summary, confidence intervals, the Mann-Whitney U test), the
// run directory's records (env.json's Provenance, run.json's Status and
// Outcome), and the vocabulary they share: metric names, the start phases
// and their stages (Phases), and the classes of isolation.
//
// It sits below the runner (bench) and the drivers, so that the reports
// depend on it alone.
package results
