package reports

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	"virtbench/analysis"
	"virtbench/internal/results"
	"virtbench/internal/textsafe"
)

// The exposition formats virtbench report writes for dashboards.
var (
	// FormatPrometheus is Prometheus' text exposition format, for
	// node_exporter's textfile collector or a Pushgateway.
	FormatPrometheus = expfmt.NewFormat(expfmt.TypeTextPlain)
	// FormatOpenMetrics is OpenMetrics 1.0, which promtool tsdb
	// create-blocks-from openmetrics reads.
	FormatOpenMetrics = expfmt.NewFormat(expfmt.TypeOpenMetrics)
)

// metricPrefix starts every metric virtbench exposes.
const metricPrefix = "virtbench_"

// baseUnits maps a metric's declared unit to the base unit Prometheus
// names it by, and the factor that converts a value to it.
var baseUnits = map[string]struct {
	name   string
	factor float64
}{
	"sec":         {"seconds", 1},
	"B":           {"bytes", 1},
	"B/s":         {"bytes_per_second", 1},
	"op/s":        {"operations_per_second", 1},
	"sec/op":      {"seconds_per_operation", 1},
	"%":           {"ratio", 0.01},
	"cores":       {"cores", 1},
	"tasks":       {"tasks", 1},
	"pages":       {"pages", 1},
	"instances":   {"instances", 1},
	"requests":    {"requests", 1},
	"steps":       {"steps", 1},
	"inst/s":      {"instances_per_second", 1},
	"inst/s/core": {"instances_per_second_per_core", 1},
}

// WriteExposition writes the run's summaries in format (FormatPrometheus
// or FormatOpenMetrics): per metric a summary family (quantiles 0, 0.25,
// 0.5, 0.75, 0.95, 0.99 and 1, the count and the sum of the values) and two
// gauge families bounding the median's 95% confidence interval, each
// labelled with the variant, its driver, the workload, the instance count
// and the host. Values are in the metric's base unit, named in its name
// (virtbench_startup_seconds). OpenMetrics samples carry the time the run
// ended (promtool tsdb create-blocks-from needs one); the text format's
// carry none, as node_exporter's textfile collector requires.
func WriteExposition(w io.Writer, a *analysis.Analysis, format expfmt.Format) error {
	r := a.Run
	enc := expfmt.NewEncoder(w, format)
	var at *int64
	if format.FormatType() == expfmt.TypeOpenMetrics {
		end := r.Status.Finished
		if end.IsZero() {
			end = r.Status.Started
		}
		at = proto.Int64(end.UnixMilli())
	}
	fams, err := families(r, a, at)
	if err != nil {
		return err
	}
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			return fmt.Errorf("reports: exposition: %w", err)
		}
	}
	if closer, ok := enc.(expfmt.Closer); ok {
		if err := closer.Close(); err != nil {
			return fmt.Errorf("reports: exposition: %w", err)
		}
	}
	return nil
}

// families returns the metric families of a run's summaries, sorted by
// name as the text format expects; at, when set, is every sample's time
// in milliseconds since the epoch. Two metrics whose families would share
// a name (zz.a and zz_a; startup_ci95_low beside startup's interval) are
// an error: a family of both would mean neither.
func families(r *analysis.Run, a *analysis.Analysis, at *int64) ([]*dto.MetricFamily, error) {
	byName := map[string][]*dto.MetricFamily{}
	owner := map[string]string{} // family name → the metric it is of
	for _, s := range a.Index.Summaries {
		if s.N == 0 {
			continue
		}
		unit, ok := baseUnits[s.Unit]
		if !ok && s.Unit != "" {
			continue // a test workload's own unit: nothing a dashboard reads
		}
		if unit.name == "" {
			unit.factor = 1
		}
		name := func(part string) string { // the unit last, as OpenMetrics requires
			return strings.TrimSuffix(metricPrefix+promName(s.Metric)+part+"_"+unit.name, "_")
		}
		kind := r.Vocabulary.Kind(s.Metric)
		if err := claimNames(owner, s.Metric, name); err != nil {
			return nil, err
		}
		fs := byName[name("")]
		if fs == nil {
			fs = []*dto.MetricFamily{
				family(name("_ci95_low"), "lower bound of the 95% confidence interval of the median: "+kind.Doc, unit.name, dto.MetricType_GAUGE),
				family(name("_ci95_high"), "upper bound of the 95% confidence interval of the median: "+kind.Doc, unit.name, dto.MetricType_GAUGE),
			}
			if kind.Signed {
				// A summary's quantiles cannot be negative: gauges instead.
				fs = append(fs, family(name("_median"), "median: "+kind.Doc, unit.name, dto.MetricType_GAUGE),
					family(name("_min"), "smallest value: "+kind.Doc, unit.name, dto.MetricType_GAUGE),
					family(name("_max"), "largest value: "+kind.Doc, unit.name, dto.MetricType_GAUGE))
			} else {
				fs = append(fs, family(name(""), kind.Doc, unit.name, dto.MetricType_SUMMARY))
			}
			byName[name("")] = fs
		}
		labels := promLabels(r, s)
		v := func(x float64) *float64 { return proto.Float64(x * unit.factor) }
		gauge := func(f *dto.MetricFamily, x float64) {
			f.Metric = append(f.Metric, &dto.Metric{Label: labels, TimestampMs: at, Gauge: &dto.Gauge{Value: v(x)}})
		}
		if s.HasInterval() {
			// Too few values for an interval: no bounds, rather than
			// bounds that are not one.
			gauge(fs[0], s.CILo)
			gauge(fs[1], s.CIHi)
		}
		if kind.Signed {
			gauge(fs[2], s.Median)
			gauge(fs[3], s.Min)
			gauge(fs[4], s.Max)
			continue
		}
		q := func(q, x float64) *dto.Quantile { return &dto.Quantile{Quantile: proto.Float64(q), Value: v(x)} }
		fs[2].Metric = append(fs[2].Metric, &dto.Metric{Label: labels, TimestampMs: at, Summary: &dto.Summary{
			SampleCount: proto.Uint64(uint64(s.N)), SampleSum: v(s.Mean * float64(s.N)),
			Quantile: []*dto.Quantile{q(0, s.Min), q(0.25, s.P25), q(0.5, s.Median), q(0.75, s.P75), q(0.95, s.P95), q(0.99, s.P99), q(1, s.Max)},
		}})
	}
	var out []*dto.MetricFamily
	for _, fs := range byName {
		for _, f := range fs {
			if len(f.Metric) > 0 {
				out = append(out, f)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out, nil
}

// claimNames records in owner that metric's families take their names
// (name of each part), or says which metric took one first.
func claimNames(owner map[string]string, metric string, name func(part string) string) error {
	for _, part := range []string{"", "_ci95_low", "_ci95_high", "_median", "_min", "_max"} {
		if m, ok := owner[name(part)]; ok && m != metric {
			return fmt.Errorf("reports: exposition: metrics %q and %q would both be written as %s: rename one", m, metric, name(part))
		}
		owner[name(part)] = metric
	}
	return nil
}

func family(name, help, unit string, t dto.MetricType) *dto.MetricFamily {
	f := &dto.MetricFamily{Name: proto.String(name), Help: proto.String(help), Type: t.Enum()}
	if unit != "" {
		f.Unit = proto.String(unit)
	}
	return f
}

// promLabels are a summary's labels: its variant, the variant's driver,
// the workload, the instance count and the host.
func promLabels(r *analysis.Run, s results.Summary) []*dto.LabelPair {
	driver := r.Status.Outcome.Variants[s.Variant].Driver
	pairs := [][2]string{{"driver", driver}, {"host", r.Provenance.Hostname}, {"instances", strconv.Itoa(s.Instances)},
		{"variant", s.Variant}, {"workload", s.Workload}}
	var out []*dto.LabelPair
	for _, p := range pairs {
		out = append(out, &dto.LabelPair{Name: proto.String(p[0]), Value: proto.String(textsafe.Line(p[1]))})
	}
	return out
}

// promName turns a metric into a Prometheus name part: "cpu.sha256" →
// "cpu_sha256".
func promName(metric string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, metric)
}
