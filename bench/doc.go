// Package bench runs scenarios: it plans trials (driver × workload ×
// instance count × repetition), drives the drivers, samples startup,
// teardown, memory and workload results, and stores every raw sample as it
// is taken (the samples, their store and statistics are package results).
package bench
