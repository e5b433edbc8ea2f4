package scenarios

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"virtbench/internal/didyoumean"
	"virtbench/internal/loadgen"
	"virtbench/internal/safefile"
)

//go:embed builtin/*.yaml
var builtinFS embed.FS

// Builtins returns the names of the embedded scenarios, sorted.
func Builtins() []string {
	entries, _ := fs.ReadDir(builtinFS, "builtin")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// Builtin loads an embedded scenario by name.
func Builtin(name string) (*Scenario, error) {
	b, err := builtinFS.ReadFile(path.Join("builtin", name+".yaml"))
	if err != nil {
		return nil, fmt.Errorf("scenarios: no built-in scenario %q (have %s)", name, strings.Join(Builtins(), ", "))
	}
	return Parse("builtin:"+name, b)
}

// Open loads nameOrFile: a built-in name, or the path of a YAML file.
func Open(nameOrFile string) (*Scenario, error) {
	if !strings.ContainsAny(nameOrFile, "/.") {
		return Builtin(nameOrFile)
	}
	b, err := safefile.ReadFile(nameOrFile, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("scenarios: %w", err)
	}
	return Parse(nameOrFile, b)
}

// Defaults for fields a file leaves out.
const (
	DefaultReps    = 10
	DefaultWarmup  = 1
	DefaultTimeout = 2 * time.Minute
	DefaultSettle  = 200 * time.Millisecond
	// DefaultMaxDuration bounds a whole run's estimated duration: a run
	// of a working day.
	DefaultMaxDuration = 8 * time.Hour
)

// fields are the keys a scenario file may have.
var fields = []string{"name", "description", "drivers", "workloads", "instances", "storm", "reps", "warmup", "timeout", "max_duration", "settle", "pause", "memory", "options", "density"}

// MaxFileBytes bounds a scenario file: real ones are a few hundred bytes,
// and the YAML parser's work grows faster than linearly on some inputs.
const MaxFileBytes = 64 << 10

// Parse parses and validates a scenario file's content. file names it in
// errors. All problems are reported together, each with its line.
func Parse(file string, data []byte) (*Scenario, error) {
	if len(data) > MaxFileBytes {
		return nil, &Error{File: file, Msg: fmt.Sprintf("larger than %d bytes", MaxFileBytes)}
	}
	sum := sha256.Sum256(data)
	s := &Scenario{
		Source:      file,
		Hash:        hex.EncodeToString(sum[:]),
		Reps:        DefaultReps,
		Warmup:      DefaultWarmup,
		Timeout:     DefaultTimeout,
		Settle:      DefaultSettle,
		MaxDuration: DefaultMaxDuration,
		Options:     map[string]string{},
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, yamlError(file, err)
	}
	p := &parser{file: file, lines: map[string]int{}}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: root.Line, Msg: "a scenario is a mapping of fields (name: …, drivers: …)"}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		p.lines[k.Value] = k.Line
		if seen[k.Value] {
			p.fail(k, "field %q given twice", k.Value)
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case "name":
			s.Name = p.str(v)
		case "description":
			s.Description = p.str(v)
		case "drivers":
			s.Drivers = p.variants(v)
		case "workloads":
			s.Workloads = p.workloads(v)
		case "instances":
			s.Instances = p.ints("instances", v)
		case "storm":
			s.Storm = p.ints("storm", v)
		case "reps":
			s.Reps, s.Auto = p.reps(v)
		case "warmup":
			s.Warmup = p.integer(v)
		case "timeout":
			s.Timeout = p.duration(v)
		case "max_duration":
			s.MaxDuration = p.duration(v)
		case "settle":
			s.Settle = p.duration(v)
		case "pause":
			s.Pause = p.duration(v)
		case "memory":
			s.MemoryBytes = p.size(v)
		case "options":
			s.Options = p.mapping("options", v, "a mapping such as {qemu.accel: tcg}")
		case "density":
			s.Density = p.density(v)
		default:
			p.fail(k, "unknown field %q%s (fields: %s)", k.Value, didyoumean.Suggest(k.Value, fields), strings.Join(fields, ", "))
		}
	}
	if len(s.Instances) == 0 && !seen["instances"] && !seen["storm"] {
		s.Instances = []int{1}
	}
	if len(p.errs) > 0 {
		return nil, Errors(p.errs)
	}
	s.lines = p.lines
	if err := s.validate(s.Line); err != nil {
		return nil, err
	}
	return s, nil
}

// yamlError turns a yaml syntax error ("yaml: line 3: …") into an *Error.
func yamlError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, tail, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(n); err == nil {
				return &Error{File: file, Line: line, Msg: tail}
			}
		}
	}
	if errors.Is(err, io.EOF) {
		return &Error{File: file, Msg: "empty file: a scenario needs at least name, drivers and workloads"}
	}
	return &Error{File: file, Msg: msg}
}

type parser struct {
	file  string
	errs  []error
	lines map[string]int // field path ("workloads.1") → line
}

func (p *parser) fail(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) scalar(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		p.fail(n, "expected %s, got a %s", what, kindName(n.Kind))
		return "", false
	}
	return n.Value, true
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.AliasNode:
		return "alias"
	}
	return "scalar"
}

func (p *parser) str(n *yaml.Node) string {
	s, _ := p.scalar(n, "a string")
	return s
}

func (p *parser) integer(n *yaml.Node) int {
	s, ok := p.scalar(n, "an integer")
	if !ok {
		return 0
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		p.fail(n, "%q is not an integer", s)
	}
	return v
}

// reps parses reps: a count, auto, or a mapping {auto: 5%, min: 6,
// max: 30}.
func (p *parser) reps(n *yaml.Node) (int, *AutoReps) {
	if n.Kind == yaml.ScalarNode && n.Value != "auto" {
		return p.integer(n), nil
	}
	most, auto, _ := ParseReps("auto")
	if n.Kind == yaml.ScalarNode {
		return most, auto
	}
	if n.Kind != yaml.MappingNode {
		p.fail(n, "reps: expected a count, auto, or a mapping such as {auto: 5%%, max: 30}")
		return most, auto
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "auto":
			auto.Width = p.percent(v)
		case "min":
			auto.Min = p.integer(v)
		case "max":
			most = p.integer(v)
		default:
			p.fail(k, "reps: unknown field %q%s (fields: %s)", k.Value, didyoumean.Suggest(k.Value, repsFields), strings.Join(repsFields, ", "))
		}
	}
	return most, auto
}

// ParseReps parses a repetition count given on a command line: a count,
// or auto (AutoReps with the defaults, at most DefaultAutoMax).
func ParseReps(s string) (int, *AutoReps, error) {
	if s == "auto" {
		return DefaultAutoMax, &AutoReps{Width: DefaultAutoWidth, Min: DefaultAutoMin}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, nil, fmt.Errorf("%q is not a positive count or auto", s)
	}
	return n, nil, nil
}

// repsFields are the keys of a reps mapping.
var repsFields = []string{"auto", "min", "max"}

// percent parses a share: "5%" or 0.05.
func (p *parser) percent(n *yaml.Node) float64 {
	s, ok := p.scalar(n, "a share such as 5%")
	if !ok {
		return 0
	}
	scale := 1.0
	if t, ok := strings.CutSuffix(s, "%"); ok {
		s, scale = t, 0.01
	}
	v, err := strconv.ParseFloat(strings.TrimPrefix(s, "±"), 64)
	if err != nil {
		p.fail(n, "%q is not a share such as 5%%", s)
	}
	return v * scale
}

func (p *parser) duration(n *yaml.Node) time.Duration {
	s, ok := p.scalar(n, "a duration such as 30s or 2m")
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.fail(n, "%q is not a duration such as 30s or 2m", s)
	}
	return d
}

// list returns the items of a sequence, or the node itself for a scalar.
func (p *parser) list(field string, n *yaml.Node) []*yaml.Node {
	p.lines[field] = n.Line
	var items []*yaml.Node
	switch n.Kind {
	case yaml.SequenceNode:
		items = n.Content
	case yaml.ScalarNode:
		items = []*yaml.Node{n}
	default:
		p.fail(n, "%s: expected a list, got a %s", field, kindName(n.Kind))
	}
	for i, it := range items {
		p.lines[field+"."+strconv.Itoa(i)] = it.Line
	}
	return items
}

// variantFields are the keys of a variant mapping.
var variantFields = []string{"name", "driver", "options", "workloads"}

// variants parses the drivers list: driver names (a name may hold several,
// comma-separated) and variant mappings {name, driver, options, workloads}.
func (p *parser) variants(n *yaml.Node) []Variant {
	var out []Variant
	for i, it := range p.list("drivers", n) {
		field := "drivers." + strconv.Itoa(i)
		switch it.Kind {
		case yaml.ScalarNode:
			for _, d := range strings.Split(it.Value, ",") {
				d = strings.TrimSpace(d)
				out = append(out, Variant{Name: d, Driver: d})
			}
		case yaml.MappingNode:
			var v Variant
			for j := 0; j+1 < len(it.Content); j += 2 {
				k, val := it.Content[j], it.Content[j+1]
				p.lines[field+"."+k.Value] = k.Line
				switch k.Value {
				case "name":
					v.Name = p.str(val)
				case "driver":
					v.Driver = p.str(val)
				case "options":
					v.Options = p.mapping(field+".options", val, "a mapping such as {devices: emulated}")
				case "workloads":
					for _, w := range p.list(field+".workloads", val) {
						if s, ok := p.scalar(w, "a workload name"); ok {
							v.Workloads = append(v.Workloads, s)
						}
					}
				default:
					p.fail(k, "drivers: unknown field %q%s (fields: %s)", k.Value, didyoumean.Suggest(k.Value, variantFields), strings.Join(variantFields, ", "))
				}
			}
			if v.Driver == "" {
				p.fail(it, "drivers: a variant needs a driver, e.g. {name: qemu-emulated, driver: qemu, options: {devices: emulated}}")
			}
			if v.Name == "" {
				v.Name = v.Driver
			}
			out = append(out, v)
		default:
			p.fail(it, "drivers: expected a driver name or a variant mapping {name, driver, options}")
		}
	}
	return out
}

func (p *parser) ints(field string, n *yaml.Node) []int {
	var out []int
	for _, it := range p.list(field, n) {
		out = append(out, p.integer(it))
	}
	return out
}

// workloadFields are the keys of a workload mapping; loadFields of its
// load, sloFields of the load's objective.
var (
	workloadFields = []string{"name", "args", "load", "service"}
	loadFields     = []string{"rate", "duration", "warmup", "windows", "slo"}
	sloFields      = []string{"p99", "errors"}
)

// load parses a workload's load profile: {rate: 50/s, duration: 20s,
// warmup: 2s, slo: {p99: 50ms, errors: 0.1%}}.
func (p *parser) load(field string, n *yaml.Node) *loadgen.Profile {
	p.lines[field] = n.Line
	if n.Kind != yaml.MappingNode {
		p.fail(n, "load: expected a mapping with %s", strings.Join(loadFields, ", "))
		return nil
	}
	lp := &loadgen.Profile{Warmup: loadgen.DefaultWarmup, Windows: 1}
	p.fields("load", n, loadFields, func(key string, v *yaml.Node) {
		switch key {
		case "rate":
			lp.Rate = p.rate(v)
		case "duration":
			lp.Duration = p.duration(v)
		case "warmup":
			lp.Warmup = p.duration(v)
		case "windows":
			lp.Windows = p.integer(v)
		case "slo":
			p.lines[field+".slo"] = v.Line
			lp.SLO = p.slo(v)
		}
	})
	return lp
}

// fields calls set with each key of the mapping n that is one of names,
// and its value; any other key is reported as unknown to what, with the
// closest of names.
func (p *parser) fields(what string, n *yaml.Node, names []string, set func(key string, v *yaml.Node)) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(names, k.Value) {
			p.fail(k, "%s: unknown field %q%s (fields: %s)", what, k.Value, didyoumean.Suggest(k.Value, names), strings.Join(names, ", "))
			continue
		}
		set(k.Value, v)
	}
}

// rate parses a request rate: "50/s", "3000/m" or 50 (per second).
func (p *parser) rate(n *yaml.Node) float64 {
	s, ok := p.scalar(n, "a rate such as 50/s")
	if !ok {
		return 0
	}
	num, per := s, time.Second
	if a, b, ok := strings.Cut(s, "/"); ok {
		num = a
		switch b {
		case "s":
		case "m":
			per = time.Minute
		default:
			p.fail(n, "%q is not a rate such as 50/s or 3000/m", s)
			return 0
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		p.fail(n, "%q is not a rate such as 50/s or 3000/m", s)
		return 0
	}
	return v / per.Seconds()
}

// slo parses a load's objective: {p99: 50ms, errors: 0.1%}.
func (p *parser) slo(n *yaml.Node) *loadgen.SLO {
	if n.Kind != yaml.MappingNode {
		p.fail(n, "slo: expected a mapping with %s", strings.Join(sloFields, ", "))
		return nil
	}
	o := &loadgen.SLO{}
	p.fields("slo", n, sloFields, func(key string, v *yaml.Node) {
		switch key {
		case "p99":
			o.P99 = p.duration(v)
		case "errors":
			o.Errors = p.percent(v)
		}
	})
	return o
}

func (p *parser) workloads(n *yaml.Node) []Workload {
	var out []Workload
	for _, it := range p.list("workloads", n) {
		switch it.Kind {
		case yaml.ScalarNode:
			out = append(out, Workload{Name: it.Value})
		case yaml.MappingNode:
			var w Workload
			for i := 0; i+1 < len(it.Content); i += 2 {
				k, v := it.Content[i], it.Content[i+1]
				switch k.Value {
				case "name":
					w.Name = p.str(v)
				case "args":
					for _, a := range p.list("args", v) {
						if s, ok := p.scalar(a, "a flag"); ok {
							w.Args = append(w.Args, s)
						}
					}
				case "load":
					w.Load = p.load(fmt.Sprintf("workloads.%d.load", len(out)), v)
				case "service":
					w.Service = p.service(fmt.Sprintf("workloads.%d.service", len(out)), v)
				default:
					p.fail(k, "workloads: unknown field %q%s (fields: %s)", k.Value, didyoumean.Suggest(k.Value, workloadFields), strings.Join(workloadFields, ", "))
				}
			}
			if w.Name == "" {
				p.fail(it, "workloads: a workload needs a name")
			}
			out = append(out, w)
		default:
			p.fail(it, "workloads: expected a name or a mapping with name, args, load and service")
		}
	}
	return out
}

// mapping parses a mapping of settings to string values; each key's line
// is recorded as field.KEY.
func (p *parser) mapping(field string, n *yaml.Node, want string) map[string]string {
	out := map[string]string{}
	if n.Kind != yaml.MappingNode {
		p.fail(n, "%s: expected %s", field, want)
		return out
	}
	p.lines[field] = n.Line
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if _, dup := out[k.Value]; dup {
			p.fail(k, "%s: %q given twice", field, k.Value)
		}
		p.lines[field+"."+k.Value] = k.Line
		if v, ok := p.scalar(n.Content[i+1], "a string value"); ok {
			out[k.Value] = v
		}
	}
	return out
}

// densityFields are the keys of a density mapping.
var densityFields = []string{"step", "factor", "max", "floor", "latency_limit", "parallel"}

func (p *parser) density(n *yaml.Node) *Density {
	d := &Density{Step: "geometric", Factor: 2, Max: MaxInstances}
	p.lines["density"] = n.Line
	if n.Kind != yaml.MappingNode {
		p.fail(n, "density: expected a mapping such as {step: geometric, factor: 2, max: 1000}")
		return d
	}
	p.fields("density", n, densityFields, func(key string, v *yaml.Node) {
		switch key {
		case "step":
			d.Step = p.str(v)
		case "factor":
			d.Factor = p.integer(v)
		case "max":
			d.Max = p.integer(v)
		case "floor":
			d.FloorBytes = p.size(v)
		case "latency_limit":
			d.LatencyLimit = p.duration(v)
		case "parallel":
			d.Parallel = p.integer(v)
		}
	})
	return d
}

func (p *parser) size(n *yaml.Node) int64 {
	s, ok := p.scalar(n, "a size such as 256MiB")
	if !ok {
		return 0
	}
	v, err := ParseSize(s)
	if err != nil {
		p.fail(n, "%v", err)
	}
	return v
}

// ParseSize parses a byte count with an optional binary or decimal suffix:
// 4096, 64KiB, 256MiB, 2GiB, 100MB.
func ParseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size such as 256MiB", s)
	}
	return v * mult, nil
}
