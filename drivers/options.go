package drivers

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"virtbench/internal/didyoumean"
)

// Option declares one setting a driver takes ("accel" of qemu), so that a
// scenario's settings are checked when it loads, before anything starts,
// and listed by `virtbench list`.
type Option struct {
	Name string
	// Doc says in one line what the option changes.
	Doc string
	// Default is the value the driver uses when the option is not given;
	// "" where the default is found on the host (e.g. the newest kernel).
	Default string
	// Values are the allowed values; none means any value of Kind.
	Values []string
	// Kind is the type of the value.
	Kind OptionKind
	// HostPath says the value names a program virtbench runs or a file it
	// reads on the host, with virtbench's privileges: a scenario file may
	// set it only when the user trusts the file (the trust boundary in the
	// README); the command line (--set) is the user's own.
	HostPath bool
}

// OptionKind is the type of an option's value.
type OptionKind int

// The kinds of option values.
const (
	String   OptionKind = iota // any text (a path, a name)
	Positive                   // a positive integer
	Bool                       // true or false
)

// Check reports whether v is a valid value of o.
func (o Option) Check(v string) error {
	switch {
	case len(o.Values) > 0 && !slices.Contains(o.Values, v):
		return fmt.Errorf("%q is not one of %s%s", v, strings.Join(o.Values, ", "), didyoumean.Suggest(v, o.Values))
	case o.Kind == Positive:
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive integer", v)
		}
	case o.Kind == Bool:
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
	}
	return nil
}

// Usage is the option's one-line description with its values and default,
// for `virtbench list` and the README.
func (o Option) Usage() string {
	var b strings.Builder
	b.WriteString(o.Doc)
	switch {
	case len(o.Values) > 0:
		fmt.Fprintf(&b, " (%s", strings.Join(o.Values, "|"))
	case o.Kind == Positive:
		b.WriteString(" (a positive integer")
	case o.Kind == Bool:
		b.WriteString(" (true|false")
	default:
		b.WriteString(" (text")
	}
	if o.Default != "" {
		fmt.Fprintf(&b, "; default %s", o.Default)
	}
	if o.HostPath {
		b.WriteString("; a host path: from a scenario file only with --trust-scenario")
	}
	b.WriteString(")")
	return b.String()
}

// Option returns the declared option name of the driver.
func (info Info) Option(name string) (Option, bool) {
	for _, o := range info.Options {
		if o.Name == name {
			return o, true
		}
	}
	return Option{}, false
}

// CheckOptions checks settings against the driver's declarations: every
// name declared, every value valid. Errors name the setting as
// DRIVER.NAME, with the closest declared name for a typo. It does not
// check how settings combine; the driver's Factory does.
func (info Info) CheckOptions(opts map[string]string) error {
	return CheckOptions(info.Name, info.Options, opts)
}

// CheckOptions checks settings against a driver's declarations; see
// Info.CheckOptions. Drivers call it first in their factories.
func CheckOptions(driver string, decls []Option, opts map[string]string) error {
	info := Info{Name: driver, Options: decls}
	names := make([]string, 0, len(opts))
	for k := range opts {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		o, ok := info.Option(k)
		if !ok {
			return info.unknownOption(k)
		}
		if err := o.Check(opts[k]); err != nil {
			return fmt.Errorf("option %s.%s: %w", info.Name, k, err)
		}
	}
	return nil
}

// unknownOption is the error for a setting the driver does not declare.
func (info Info) unknownOption(name string) error {
	var known, qualified []string
	for _, o := range info.Options {
		known = append(known, o.Name)
		qualified = append(qualified, info.Name+"."+o.Name)
	}
	if len(known) == 0 {
		return fmt.Errorf("unknown option %s.%s (%s takes no options)", info.Name, name, info.Name)
	}
	hint := ""
	if c := didyoumean.Closest(name, known); c != "" {
		hint = fmt.Sprintf(" (did you mean %s.%s?)", info.Name, c)
	}
	return fmt.Errorf("unknown option %s.%s%s; %s takes %s", info.Name, name, hint, info.Name, strings.Join(qualified, ", "))
}

// Resolve returns the settings a driver runs with: the given ones, and
// each declared default for the others. It is what a run records.
func (info Info) Resolve(opts map[string]string) map[string]string {
	out := map[string]string{}
	for _, o := range info.Options {
		if o.Default != "" {
			out[o.Name] = o.Default
		}
	}
	for k, v := range opts {
		out[k] = v
	}
	return out
}

// Values are a driver's settings as it runs with them: checked against
// their declarations, every declared default filled in (Info.Resolve).
// Each driver reads its options through ParseOptions, so the defaults
// that run are the declared ones.
type Values map[string]string

// ParseOptions checks opts against the driver's declarations and returns
// the settings it runs with.
func ParseOptions(driver string, decls []Option, opts map[string]string) (Values, error) {
	if err := CheckOptions(driver, decls, opts); err != nil {
		return nil, err
	}
	return Values(Info{Name: driver, Options: decls}.Resolve(opts)), nil
}

// String returns the setting name ("" where it has no value).
func (v Values) String(name string) string { return v[name] }

// Bool returns a Bool setting; the value was checked by ParseOptions.
func (v Values) Bool(name string) bool {
	b, _ := strconv.ParseBool(v[name])
	return b
}

// Int returns a Positive setting (0 where it has no value); the value was
// checked by ParseOptions.
func (v Values) Int(name string) int {
	n, _ := strconv.Atoi(v[name])
	return n
}
