// Package bench runs scenarios: it plans trials (driver × workload ×
// instance count × repetition), drives the drivers, samples startup,
// teardown, memory and workload results, stores every raw sample as it is
// taken, and summarises them with statistics that say when they are weak.
package bench
