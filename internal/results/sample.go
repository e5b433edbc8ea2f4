package results

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"virtbench/internal/safefile"
)

// Sample is one measured value from one repetition of one trial.
type Sample struct {
	Time time.Time `json:"time"`
	// Variant names the scenario's variant that took the sample (written
	// "driver" by virtbench before 2026-12: UnmarshalJSON reads both).
	Variant   string `json:"variant"`
	Workload  string `json:"workload"`
	Instances int    `json:"instances"`
	Rep       int    `json:"rep"`
	// Warmup samples are kept but left out of summaries.
	Warmup   bool   `json:"warmup,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Metric names what was measured: startup, teardown, rss, pss, uss,
	// or a workload result such as cpu.sha256.
	Metric string `json:"metric"`
	// Unit is a base unit: sec, B, op/s, B/s, sec/op.
	Unit  string  `json:"unit"`
	Value float64 `json:"value"`
	// Labels say how the instance ran (e.g. accel=tcg).
	Labels map[string]string `json:"labels,omitempty"`
	// Error marks a failed measurement; Value is then meaningless.
	Error string `json:"error,omitempty"`
	// Run is the store's mark of the run that took the sample: a samples
	// file that holds two runs' samples is refused (DecodeSamples).
	Run string `json:"run,omitempty"`
}

// MaxValue bounds the magnitude of any measured value: nothing virtbench
// measures (seconds, bytes, operations per second) comes near it, and
// sums of values below it stay finite.
const MaxValue = 1e18

// MaxLabelValue bounds a label's value.
const MaxLabelValue = 4096

// Check reports what is impossible about a sample as measured: a name
// that is not one (see ValidVariant; a label value with a control
// character), a value that is not finite or beyond MaxValue, a negative
// duration or size (the units sec and B, unless the metric is Signed), a
// value below what its kind can physically be (MetricKind.Min), a unit
// other than its metric's declared one, as v declares them. A failed
// sample's value is not checked.
func (s Sample) Check(v Vocabulary) error {
	if err := s.checkNames(); err != nil {
		return err
	}
	if s.Failed() {
		return nil
	}
	k := v.Kind(s.Metric)
	switch {
	case math.IsNaN(s.Value) || math.Abs(s.Value) > MaxValue:
		return fmt.Errorf("%s: value %g is beyond any measurement (at most %g)", s.Metric, s.Value, MaxValue)
	case s.Value < 0 && (s.Unit == "sec" || s.Unit == "B") && !k.Signed:
		return fmt.Errorf("%s: a %s cannot be negative (%g %s)", s.Metric, map[string]string{"sec": "duration", "B": "size"}[s.Unit], s.Value, s.Unit)
	case k.Min > 0 && s.Value < k.Min:
		return fmt.Errorf("%s: %g %s is below what can be measured (at least %g %s)", s.Metric, s.Value, s.Unit, k.Min, k.Unit)
	}
	if k.Unit != "" && s.Unit != k.Unit {
		return fmt.Errorf("%s: unit %q, declared %q", s.Metric, s.Unit, k.Unit)
	}
	return nil
}

// checkNames refuses a sample whose names are not names.
func (s Sample) checkNames() error {
	switch {
	case s.Metric == "":
		return errors.New("a sample without a metric")
	case !metricName.MatchString(s.Metric):
		return fmt.Errorf("metric %q is not a metric's name (A-Z a-z 0-9 _ . : -)", s.Metric)
	case !variantName.MatchString(s.Variant):
		return fmt.Errorf("%s: variant %q is not a variant's name (a-z 0-9 _ -)", s.Metric, s.Variant)
	case s.Workload != "" && !variantName.MatchString(s.Workload):
		return fmt.Errorf("%s: workload %q is not a workload's name (a-z 0-9 _ -)", s.Metric, s.Workload)
	case !instanceName.MatchString(s.Instance):
		return fmt.Errorf("%s: instance %q is not an instance's name", s.Metric, s.Instance)
	case !unitName.MatchString(s.Unit):
		return fmt.Errorf("%s: unit %q is not a unit", s.Metric, s.Unit)
	case s.Instances < 0:
		return fmt.Errorf("%s: negative instances (%d)", s.Metric, s.Instances)
	}
	for k, v := range s.Labels {
		if !labelKey.MatchString(k) {
			return fmt.Errorf("%s: label %q is not a label's key (a-z 0-9 _)", s.Metric, k)
		}
		if len(v) > MaxLabelValue || strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }) {
			return fmt.Errorf("%s: label %s: a value with a control character, or longer than %d bytes", s.Metric, k, MaxLabelValue)
		}
	}
	return nil
}

// UnmarshalJSON reads a sample, its variant from "variant" or, in runs of
// an older virtbench, from "driver".
func (s *Sample) UnmarshalJSON(b []byte) error {
	type plain Sample
	var j struct {
		plain
		Driver string `json:"driver"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Sample(j.plain)
	if s.Variant == "" {
		s.Variant = j.Driver
	}
	return nil
}

// Failed reports whether s records a failure.
func (s Sample) Failed() bool { return s.Error != "" }

// MetricTrialExcluded marks a trial whose samples are kept but not
// summarised, because what they measured is not the instances' ordinary
// cost: an instance exited during the trial (killed from outside), or
// virtbench itself did not run for a while (stopped, or the host
// stalled). Its Error says why; it carries the trial's coordinates
// (variant, workload, instances, rep).
const MetricTrialExcluded = "trial_excluded"

// InterruptedPrefix starts the Error of a measurement that failed because
// the run was interrupted (its context cancelled): kept, but not a failure
// of the instance, and not counted as one.
const InterruptedPrefix = "interrupted: "

// Metric names recorded by the runner.
const (
	MetricStartup = "startup"
	// PhaseMetricPrefix names a start phase's metric: phase.NAME, for each
	// of Phases. The phases, a VM's guest boot (MetricGuestBoot)
	// and the agent's phase add up to MetricStartup.
	PhaseMetricPrefix = "phase."
	MetricTeardown    = "teardown"
	// MetricGuestBoot is how long a VM's virtual CPU had run at READY
	// (firmware, kernel and init); MetricGuestUptime is its kernel's own
	// uptime then, which misses the early boot before the clock ticks.
	MetricGuestBoot   = "guest_boot"
	MetricGuestUptime = "guest_uptime"
	// BootMetricPrefix starts the metrics of a VM's boot stages
	// (boot_kernel, boot_clocksource, boot_initramfs, boot_init): when
	// each stage's kernel log line appeared, on the vCPU's time line.
	BootMetricPrefix = "boot_"
	MetricRSS        = "rss"
	MetricPSS        = "pss"
	MetricUSS        = "uss"
	MetricPSSAnon    = "pss_anon"
	MetricPSSOwn     = "pss_own"
	// MetricHostMemAvailable is the host's MemAvailable before a trial's
	// instances started, or before a density sweep's (at 0 instances).
	MetricHostMemAvailable = "host_mem_available"
	MetricCgroupMem        = "cgroup_mem"
	// MemPartPrefix names the parts of an instance's memory a driver
	// tells apart (drivers.MemoryParter): mem.PART; MetricMemParts records
	// a failure to tell them.
	MemPartPrefix     = "mem."
	MetricMemParts    = "mem.parts"
	MetricHostMemDrop = "host_mem_drop"
	// MetricDaemonPSS is the PSS of the daemons a driver's instances need
	// (drivers.Daemoner), read once per trial beside the instances': what
	// the host holds once, whatever their number.
	MetricDaemonPSS = "daemon_pss"
	// MetricHostMemNoise is the largest MemAvailable drop the host showed
	// with no instance, over a trial's settle time: a drop per instance
	// smaller than it divided by the instance count is noise. It is the
	// sample of HostVariant.
	MetricHostMemNoise = "host_mem_noise"
	// Idle cost of an instance beyond memory: the CPU its processes use
	// while it idles, in cores, and the tasks (PIDs) they hold.
	MetricIdleCPU = "idle_cpu"
	// MetricIdleSettle is how long an instance's CPU use kept falling
	// before its idle CPU was read (bench.settledCPU): 0 when it had
	// settled by the first window.
	MetricIdleSettle = "idle_settle"
	MetricTasks      = "tasks"
	// Disk footprint: the shared image (recorded once per driver, with
	// workload "image") and each instance's writable layer after its workload.
	MetricImageApparent  = "image_apparent"
	MetricImageAllocated = "image_allocated"
	MetricToolsApparent  = "tools_apparent"
	MetricToolsAllocated = "tools_allocated"
	// A service's image, its unpacked root (recorded once per variant,
	// with the service's workload).
	MetricServiceImageApparent  = "service_image_apparent"
	MetricServiceImageAllocated = "service_image_allocated"
	MetricWritableApparent      = "writable_apparent"
	MetricWritableAllocated     = "writable_allocated"
)

// interner keeps one copy of each string and label set DecodeSamples
// reads.
type interner struct {
	strings map[string]string
	labels  map[string]map[string]string
}

func (in interner) string(s string) string {
	if v, ok := in.strings[s]; ok {
		return v
	}
	in.strings[s] = s
	return s
}

// sample makes s share the names and labels read before. Shared label
// maps are read, never written, by whoever reads the samples.
func (in interner) sample(s *Sample) {
	for _, p := range []*string{&s.Variant, &s.Workload, &s.Instance, &s.Metric, &s.Unit, &s.Run} {
		*p = in.string(*p)
	}
	if len(s.Labels) == 0 {
		s.Labels = nil
		return
	}
	keys := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(s.Labels[k])
		b.WriteByte(0)
	}
	if m, ok := in.labels[b.String()]; ok {
		s.Labels = m
		return
	}
	in.labels[b.String()] = s.Labels
}

// runName names a run by its mark in errors.
func runName(mark string) string {
	if mark == "no run mark" {
		return "no marked run"
	}
	return "run " + mark
}

// JSONError says what is wrong with a JSON document without quoting any
// of it: where it is not JSON, or which field holds the wrong type. A
// record may be a link planted to a secret file; its bytes stay out of
// messages.
func JSONError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("not valid JSON (at byte %d)", syn.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Errorf("field %s: a JSON value of the wrong type (want %s)", typ.Field, typ.Type)
	case errors.As(err, &typ):
		return fmt.Errorf("a JSON value of the wrong type (want %s)", typ.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("not valid JSON (it ends early)")
	}
	return errors.New("not valid JSON")
}

// ErrTornLine is returned, with the samples before it, when the last
// line of a samples file is incomplete: its writer was killed mid-write.
var ErrTornLine = errors.New("results: the last line is incomplete (the run was killed while writing it) and was dropped")

// ReadSamples reads a samples.jsonl file, checking each sample as v
// declares its metric. A torn last line is dropped and reported as
// ErrTornLine (wrapped, naming the line) alongside the samples before it;
// any other bad line is an error naming it.
//
// The file is opened without following a link (safefile.OpenIn, in the
// directory path names).
func ReadSamples(path string, v Vocabulary) ([]Sample, error) {
	f, err := openIn(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return DecodeSamples(f, path, v)
}

// openIn opens path, a run directory's file, through no link.
func openIn(path string) (*os.File, error) {
	f, err := safefile.OpenIn(filepath.Dir(path), filepath.Base(path))
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	return f, nil
}

// DecodeSamples reads samples in JSON lines from r, checking them as v
// declares their metrics; name is used in errors. Each sample must pass
// Check, and all must be of one run (Sample.Run); an error names the
// first line that is not. See ReadSamples for a torn last line.
//
// Samples repeat their names and labels: each distinct string and label
// set is kept once (interner), so that a run's samples take a fraction of
// the memory their file does.
func DecodeSamples(r io.Reader, name string, v Vocabulary) ([]Sample, error) {
	var out []Sample
	err := decodeSamples(r, name, v, func(s Sample) { out = append(out, s) })
	if err != nil && !errors.Is(err, ErrTornLine) {
		return nil, err
	}
	return out, err
}

// decodeSamples reads samples in JSON lines from r, passing each that
// passes its checks to add.
func decodeSamples(r io.Reader, name string, v Vocabulary, add func(Sample)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	in := interner{strings: map[string]string{}, labels: map[string]map[string]string{}}
	line, run, runLine := 0, "", 0
	var pending error
	for sc.Scan() {
		line++
		if pending != nil {
			return pending
		}
		if len(sc.Bytes()) == 0 {
			continue
		}
		var s Sample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			pending = fmt.Errorf("results: %s:%d: %w", name, line, JSONError(err))
			continue
		}
		if err := s.Check(v); err != nil {
			return fmt.Errorf("results: %s:%d: %w", name, line, err)
		}
		in.sample(&s)
		// Every sample carries its run's mark (a store writes it), or none
		// does (a run of a virtbench from before marks): samples with and
		// without one were joined from two files.
		mark := s.Run
		if mark == "" {
			mark = "no run mark"
		}
		switch {
		case runLine == 0:
			run, runLine = mark, line
		case mark != run:
			return fmt.Errorf("results: %s:%d: a sample of %s, but line %d began %s: the samples of two runs were joined", name, line, runName(mark), runLine, runName(run))
		}
		add(s)
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("results: %s: %w", name, err)
	}
	if pending != nil {
		return fmt.Errorf("%s:%d: %w", name, line, ErrTornLine)
	}
	return nil
}
