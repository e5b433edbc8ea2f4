package results

import (
	"fmt"
	"io"
)

// Measurements are a run's samples as an analysis reads them: a Series per
// Key, in the order each was first seen, holding the measured values (no
// warmup, no failure, no excluded trial) and what else the samples said
// (unit, labels, failures). They take a value's eight bytes a sample, not
// a Sample's few hundred, so that a run of any size is analysed in little
// memory; samples.jsonl keeps everything else.
type Measurements struct {
	Series []*Series
	byKey  map[Key]*Series
	// Excluded says, one line per trial, which trials' samples are kept
	// in the file but not here, and why (MetricTrialExcluded).
	Excluded []string
}

// Series is one key's measurements.
type Series struct {
	Key
	Unit   string
	Values []float64
	// reps are the repetitions the values were taken in, to drop an
	// excluded trial's.
	reps []int
	// Failed counts the failed measurements (not counting an excluded
	// trial's), Labels joins the labels the measured samples carried
	// (a key's differing values joined by "|").
	Failed int
	Labels map[string]string
}

// MeasurementsOf returns the Measurements of samples already read (see
// ReadMeasurements), in their order.
func MeasurementsOf(samples []Sample) *Measurements {
	m := &Measurements{byKey: map[Key]*Series{}}
	for _, s := range samples {
		m.add(s)
	}
	return m
}

// Lookup returns the series of k, or nil.
func (m *Measurements) Lookup(k Key) *Series { return m.byKey[k] }

// add adds one sample. Warmups are left out.
func (m *Measurements) add(s Sample) {
	if s.Warmup {
		return
	}
	if s.Metric == MetricTrialExcluded {
		m.exclude(s)
		return
	}
	k := Key{s.Variant, s.Workload, s.Instances, s.Metric}
	sr := m.byKey[k]
	if sr == nil {
		sr = &Series{Key: k, Unit: s.Unit}
		m.byKey[k] = sr
		m.Series = append(m.Series, sr)
	}
	if s.Failed() {
		sr.Failed++
		return
	}
	sr.Values = append(sr.Values, s.Value)
	sr.reps = append(sr.reps, s.Rep)
	for lk, lv := range s.Labels {
		if sr.Labels == nil {
			sr.Labels = map[string]string{}
		}
		if old, ok := sr.Labels[lk]; ok && old != lv {
			sr.Labels[lk] = old + "|" + lv
		} else if !ok {
			sr.Labels[lk] = lv
		}
	}
}

// exclude drops the values already added of the trial s excludes (its
// samples come before its record), and records why.
func (m *Measurements) exclude(s Sample) {
	m.Excluded = append(m.Excluded, fmt.Sprintf("%s %s ×%d rep %d: %s", s.Variant, s.Workload, s.Instances, s.Rep, s.Error))
	for _, sr := range m.Series {
		if sr.Variant != s.Variant || sr.Workload != s.Workload || sr.Instances != s.Instances {
			continue
		}
		kept := 0
		for i, r := range sr.reps {
			if r != s.Rep {
				sr.Values[kept], sr.reps[kept] = sr.Values[i], r
				kept++
			}
		}
		sr.Values, sr.reps = sr.Values[:kept], sr.reps[:kept]
	}
}

// Summarize summarises each series, as v declares its metric.
func (m *Measurements) Summarize(v Vocabulary) []Summary {
	out := make([]Summary, 0, len(m.Series))
	for _, sr := range m.Series {
		out = append(out, summarize(sr, v))
	}
	return out
}

// ReadMeasurements reads a samples.jsonl file (see ReadSamples) into
// Measurements, a sample at a time. A torn last line is dropped and
// reported as ErrTornLine (wrapped) beside what was read.
func ReadMeasurements(path string, v Vocabulary) (*Measurements, error) {
	f, err := openIn(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return DecodeMeasurements(f, path, v)
}

// DecodeMeasurements reads samples in JSON lines from r into Measurements
// (see DecodeSamples).
func DecodeMeasurements(r io.Reader, name string, v Vocabulary) (*Measurements, error) {
	m := &Measurements{byKey: map[Key]*Series{}}
	err := decodeSamples(r, name, v, func(s Sample) { m.add(s) })
	return m, err
}
