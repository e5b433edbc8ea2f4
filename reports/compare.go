package reports

import (
	"fmt"
	"io"
	"math"
	"sort"
	"text/tabwriter"

	"golang.org/x/perf/benchmath"

	"virtbench/internal/results"
)

// Alpha is the significance level of run comparisons, as in benchstat.
const Alpha = 0.05

// Change is one metric compared between a baseline run and another run.
type Change struct {
	results.Key
	Unit string `json:"unit"`
	// Host is the host of the compared run.
	Host string `json:"host"`
	// Old and New are the medians.
	Old, New float64
	// Delta is (New-Old)/Old.
	Delta float64
	// P is the Mann-Whitney U test's p-value.
	P float64
	// Significant is P < Alpha.
	Significant bool
	// Regression is a significant change for the worse, and Improvement
	// one for the better, by the direction the metric's kind declares
	// (results.KindOf): slower, bigger or lower throughput is worse, a
	// density sweep reaching more instances or KSM saving more is better.
	// A metric of no direction (an amount such as guest RAM configured)
	// is neither, only Significant.
	Regression, Improvement bool
	// Note explains a comparison that could not be made well.
	Note string
}

// samplesByKey groups measured values by key.
func samplesByKey(samples []results.Sample) (map[results.Key][]float64, map[results.Key]string, []results.Key) {
	vals := map[results.Key][]float64{}
	units := map[results.Key]string{}
	var order []results.Key
	for _, s := range samples {
		if s.Warmup || s.Failed() {
			continue
		}
		k := results.Key{Driver: s.Driver, Workload: s.Workload, Instances: s.Instances, Metric: s.Metric}
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = append(vals[k], s.Value)
		units[k] = s.Unit
	}
	return vals, units, order
}

// Compare compares each later run with the first (the baseline), metric by
// metric, with the Mann-Whitney U test as benchstat does. The host's own
// samples (results.HostVariant: its MemAvailable noise) describe the host,
// not what ran on it, and are not compared.
func Compare(runs []*Run) []Change {
	if len(runs) < 2 {
		return nil
	}
	base, baseUnits, order := samplesByKey(runs[0].Samples)
	var out []Change
	for _, r := range runs[1:] {
		cur, _, _ := samplesByKey(r.Samples)
		for _, k := range order {
			b, c := base[k], cur[k]
			if len(c) == 0 || k.Driver == results.HostVariant {
				continue
			}
			ch := Change{Key: k, Unit: baseUnits[k], Host: r.Provenance.Hostname}
			sb := benchmath.NewSample(b, &benchmath.DefaultThresholds)
			sc := benchmath.NewSample(c, &benchmath.DefaultThresholds)
			ch.Old = benchmath.AssumeNothing.Summary(sb, results.Confidence).Center
			ch.New = benchmath.AssumeNothing.Summary(sc, results.Confidence).Center
			if ch.Old != 0 {
				ch.Delta = (ch.New - ch.Old) / math.Abs(ch.Old)
			}
			ch.P, ch.Note = results.MannWhitney(b, c)
			ch.Significant = ch.P < Alpha
			if ch.Significant && ch.Delta != 0 {
				switch results.KindOf(k.Metric).Better {
				case results.HigherIsBetter:
					ch.Regression, ch.Improvement = ch.Delta < 0, ch.Delta > 0
				case results.LowerIsBetter:
					ch.Regression, ch.Improvement = ch.Delta > 0, ch.Delta < 0
				}
			}
			out = append(out, ch)
		}
	}
	return out
}

// WriteCompare writes the comparison as a table: one row per metric and
// compared run, with the host as a column.
func WriteCompare(w io.Writer, changes []Change) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "host\tdriver\tworkload\tmetric\told\tnew\tdelta\tp\tverdict")
	for _, c := range changes {
		verdict := "~"
		switch {
		case c.Regression:
			verdict = "worse"
		case c.Improvement:
			verdict = "better"
		case c.Significant && c.Delta != 0:
			verdict = "changed"
		}
		if c.Note != "" && !c.Significant {
			verdict += " (" + c.Note + ")"
		}
		wl := c.Workload
		if c.Instances > 1 {
			wl += fmt.Sprintf(" ×%d", c.Instances)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%+.1f%%\t%.3f\t%s\n", c.Host, c.Driver, wl, c.Metric,
			FormatValue(c.Old, c.Unit), FormatValue(c.New, c.Unit), 100*c.Delta, c.P, verdict)
	}
	return tw.Flush()
}

// Regressions returns the significant regressions larger than pct percent,
// worst first.
func Regressions(changes []Change, pct float64) []Change {
	var out []Change
	for _, c := range changes {
		if c.Regression && math.Abs(c.Delta)*100 > pct {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return math.Abs(out[i].Delta) > math.Abs(out[j].Delta) })
	return out
}
