package guest

import (
	"context"
	"flag"
	"net"
	"os"
	"strconv"
	"strings"
)

// probeFlags defines the probe workload: it reports what the instance sees,
// so that tests can check a driver's isolation from the inside.
func probeFlags(fs *flag.FlagSet) func(context.Context, *Agent) error {
	write := fs.String("write", "", "file to create (reports probe.write 1 on success)")
	remove := fs.String("remove", "", "file to remove (reports probe.remove 1 on success)")
	return func(ctx context.Context, a *Agent) error {
		a.Result("probe.pid", float64(os.Getpid()), "")
		a.Result("probe.uid", float64(os.Getuid()), "")
		host, _ := os.Hostname()
		a.Detail("probe.hostname", 0, "", host)
		ifs, _ := net.Interfaces()
		var names []string
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		a.Detail("probe.interfaces", float64(len(ifs)), "", strings.Join(names, ","))
		status, _ := os.ReadFile("/proc/self/status")
		for _, line := range strings.Split(string(status), "\n") {
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimSpace(v)
			switch k {
			case "CapEff", "CapPrm", "CapInh", "CapBnd":
				n, _ := strconv.ParseUint(v, 16, 64)
				a.Detail("probe."+strings.ToLower(k), float64(n), "", v)
			case "NoNewPrivs":
				n, _ := strconv.Atoi(v)
				a.Result("probe.no_new_privs", float64(n), "")
			}
		}
		if *write != "" {
			err := os.WriteFile(*write, []byte("probe\n"), 0o644)
			a.Detail("probe.write", b2f(err == nil), "", errText(err))
		}
		if *remove != "" {
			err := os.Remove(*remove)
			a.Detail("probe.remove", b2f(err == nil), "", errText(err))
		}
		return nil
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
