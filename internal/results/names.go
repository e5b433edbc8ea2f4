package results

import "regexp"

// Names in samples: a variant's and a workload's (as a scenario names
// them), a metric's, an instance's, a unit's and a label's key. A sample
// is read back from a file anyone may have written; what it names is
// printed in tables, charts and metrics' names, so nothing else passes.
var (
	variantName  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	metricName   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)
	instanceName = regexp.MustCompile(`^[A-Za-z0-9_.:-]{0,128}$`)
	unitName     = regexp.MustCompile(`^[A-Za-z0-9/%._-]{0,32}$`)
	labelKey     = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
)

// ValidVariant reports whether name is a variant's (or a workload's)
// name as a scenario may give it: 1 to 64 of a-z 0-9 _ -, starting with a
// letter or digit.
func ValidVariant(name string) bool { return variantName.MatchString(name) }

// HostPattern is what a host's name (an inventory's, a fleet directory's
// host directory) must match: a letter or digit, then at most 62 of
// A-Z a-z 0-9 _ . -. It is a path component of the campaign directory, so
// nothing of a path ("/", "..") passes; the campaign's playbook checks the
// same pattern before anything runs (deploy/ansible/campaign.yml).
const HostPattern = `^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`

var hostName = regexp.MustCompile(HostPattern)

// ValidHost reports whether name is a host's name (HostPattern).
func ValidHost(name string) bool { return hostName.MatchString(name) }
