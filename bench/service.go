package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"virtbench/drivers"
	"virtbench/guest"
	"virtbench/images"
	"virtbench/internal/results"
	"virtbench/scenarios"
)

// ProbeInterval is how often the host probes a starting service at
// first: small against the shortest start it measures (a container's,
// milliseconds). After ProbeFastFor it probes every ProbeSlowInterval,
// small against a VM's start (hundreds of milliseconds), so that a slow
// start is not met by a thousand connects a second (which the kernel
// answers ever later: it limits the resets it sends). One probe waits at
// most ProbeTimeout.
const (
	ProbeInterval     = time.Millisecond
	ProbeFastFor      = 200 * time.Millisecond
	ProbeSlowInterval = 10 * time.Millisecond
	ProbeTimeout      = 100 * time.Millisecond
)

// service is a scenario's service, its image unpacked and its process
// made, before any trial.
type service struct {
	img  images.Service
	proc drivers.Process
}

// prepareServices unpacks each service's image (cached by digest) and
// makes its process from the image's configuration and the scenario's;
// a failure names the scenario's file and line. Nothing has started yet.
func (r *Runner) prepareServices(ctx context.Context, out *results.Outcome) error {
	sc := r.Scenario
	for i, w := range sc.Workloads {
		if w.Service == nil {
			continue
		}
		field := fmt.Sprintf("workloads.%d.service", i)
		fail := func(field string, err error) error {
			return &scenarios.Error{File: sc.Source, Line: sc.Line(field), Msg: fmt.Sprintf("service %s: %v", w.Name, err)}
		}
		r.progress("service %s: reading and unpacking %s", w.Name, w.Service.Image)
		img, err := images.UnpackService(ctx, r.Env.CacheDir, w.Service.Image)
		if err != nil {
			return fail(field+".image", err)
		}
		proc, err := serviceProcess(w.Service, img)
		if err != nil {
			return fail(field+".command", err)
		}
		if r.services == nil {
			r.services = map[string]*service{}
		}
		r.services[w.Name] = &service{img: img, proc: proc}
		if out.Services == nil {
			out.Services = map[string]string{}
		}
		out.Services[w.Name] = fmt.Sprintf("image %s %s; ready at %s, probed from the host end of each instance's network path (native: loopback; containers: a veth virtbench adds whatever the network option) every %v, every %v after %v, each probe waiting at most %v",
			w.Service.Image, img.Digest, w.Service.Ready, ProbeInterval, ProbeSlowInterval, ProbeFastFor, ProbeTimeout)
	}
	return nil
}

// prepareServicesOf lets variant v's driver prepare for each service v
// runs (drivers.ServicePreparer), before any trial.
func (r *Runner) prepareServicesOf(name string, v scenarios.Variant, d drivers.Driver) error {
	sp, ok := d.(drivers.ServicePreparer)
	if !ok {
		return nil
	}
	for _, w := range r.Scenario.Workloads {
		if svc := r.services[w.Name]; svc != nil && v.Runs(w.Name) {
			r.progress("%s: preparing for service %s", name, w.Name)
			if err := sp.PrepareService(&svc.img); err != nil {
				return fmt.Errorf("driver %s: service %s: %w", name, w.Name, err)
			}
		}
	}
	return nil
}

// serviceProcess returns the service's process: the port, the
// environment (the image's, with the scenario's over it), the image's
// working directory and user, and the command (the scenario's, or the
// image's Entrypoint and Cmd), which must be an executable of the image.
func serviceProcess(svc *scenarios.Service, img images.Service) (drivers.Process, error) {
	cfg := img.Config
	cmd := svc.Command
	if cmd == nil {
		cmd = append(slices.Clone(cfg.Entrypoint), cfg.Cmd...)
	}
	if len(cmd) == 0 {
		return drivers.Process{}, errors.New("the image has no Entrypoint or Cmd: give service.command")
	}
	if strings.HasPrefix(cmd[0], "-") {
		return drivers.Process{}, fmt.Errorf("the command %q begins with a flag, not a program", cmd[0])
	}
	env := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	for _, kv := range cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	for _, k := range slices.Sorted(maps.Keys(svc.Env)) {
		set(k, svc.Env[k])
	}
	if err := imageHasCommand(img.Root, cmd[0], env["PATH"]); err != nil {
		return drivers.Process{}, err
	}
	p := drivers.Process{Command: cmd, Dir: cfg.WorkingDir, User: cfg.User, Port: svc.Port}
	for _, k := range order {
		p.Env = append(p.Env, k+"="+env[k])
	}
	return p, nil
}

// imageHasCommand reports whether cmd, looked up in PATH as execvp(3)
// would inside the image, names an executable file of the image's root,
// following the image's symbolic links within the root.
func imageHasCommand(root, cmd, pathEnv string) error {
	if pathEnv == "" {
		pathEnv = guest.DefaultPath
	}
	cands := []string{cmd}
	if !strings.Contains(cmd, "/") {
		cands = nil
		for _, d := range filepath.SplitList(pathEnv) {
			cands = append(cands, path.Join(d, cmd))
		}
	}
	for _, c := range cands {
		p, err := resolveIn(root, c)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return nil
		}
	}
	if strings.Contains(cmd, "/") {
		return fmt.Errorf("the image has no executable %s", cmd)
	}
	return fmt.Errorf("the image has no executable %s in its PATH %s", cmd, pathEnv)
}

// resolveIn returns the host path of p inside root, following symbolic
// links as the image's own root would (an absolute target from root, ".."
// stopping at root).
func resolveIn(root, p string) (string, error) {
	parts := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	var cur []string
	for hops := 0; len(parts) > 0; {
		part := parts[0]
		parts = parts[1:]
		if part == "" || part == "." {
			continue
		}
		if part == ".." {
			if len(cur) > 0 {
				cur = cur[:len(cur)-1]
			}
			continue
		}
		host := filepath.Join(root, filepath.Join(append(cur, part)...))
		target, err := os.Readlink(host)
		if err != nil {
			cur = append(cur, part)
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many symbolic links", p)
		}
		if strings.HasPrefix(target, "/") {
			cur = nil
		}
		parts = append(strings.Split(strings.Trim(target, "/"), "/"), parts...)
	}
	return filepath.Join(root, filepath.Join(cur...)), nil
}

// port returns the TCP port the started instance's server listens on: a
// service's, else the one its agent's READY gives.
func (t *trial) port(st *started) (string, error) {
	if t.w.Service != nil {
		return strconv.Itoa(t.w.Service.Port), nil
	}
	_, port, err := net.SplitHostPort(st.ready.Guest.Addr)
	if err != nil {
		return "", fmt.Errorf("READY has no listen address: %q", st.ready.Guest.Addr)
	}
	return port, nil
}

// probeService waits until the started service answers the host's probe
// (svc.Ready) from the host end of its network path, polling every
// ProbeInterval (then ProbeSlowInterval), and returns when it first did.
// It fails at ctx's end with the probe's last error, or when the instance
// exits.
func probeService(ctx context.Context, inst drivers.Instance, svc *scenarios.Service) (time.Time, error) {
	if re := svc.Ready.Log; re != nil {
		lw, ok := inst.(drivers.LineWaiter)
		if !ok {
			return time.Time{}, errors.New("the driver does not pass the instance's output to the host")
		}
		return lw.WaitLine(ctx, re)
	}
	dialer, ok := inst.(drivers.Dialer)
	if !ok {
		return time.Time{}, errors.New("the driver gives the host no network path to the instance")
	}
	var exited <-chan struct{}
	if ex, ok := inst.(drivers.Exiter); ok {
		exited = ex.Exited()
	}
	port := strconv.Itoa(svc.Port)
	begin := time.Now()
	var last error
	for {
		err := probeOnce(ctx, dialer, port, svc.Ready)
		if err == nil {
			return time.Now(), nil
		}
		if errors.Is(err, drivers.ErrNotApplicable) {
			return time.Time{}, errors.New("the instance has no network path from the host (its driver's network option is none)")
		}
		var ne net.Error
		if last == nil || !(errors.As(err, &ne) && ne.Timeout()) {
			last = err // a probe's timeout says less than a refusal
		}
		wait := ProbeInterval
		if time.Since(begin) > ProbeFastFor {
			wait = ProbeSlowInterval
		}
		select {
		case <-time.After(wait):
		case <-exited:
			return time.Time{}, fmt.Errorf("%w before it was ready (the probe's last error: %v)", inst.(drivers.Exiter).ExitErr(), last)
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%w: not ready (%s) before the trial's timeout; the probe's last error: %v", drivers.ErrNotReady, svc.Ready, last)
		}
	}
}

// probeOnce connects to port and, for an HTTP probe, sends GET and reads
// the status line.
func probeOnce(ctx context.Context, d drivers.Dialer, port string, r scenarios.Ready) error {
	pctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	c, err := d.Dial(pctx, port)
	if err != nil {
		return err
	}
	defer c.Close()
	if r.HTTP == "" {
		return nil
	}
	dl, _ := pctx.Deadline()
	c.SetDeadline(dl)
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", r.HTTP); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != r.Status {
		return fmt.Errorf("HTTP status %d, want %d", resp.StatusCode, r.Status)
	}
	return nil
}

// recordServiceImages records the disk footprint of each service's image
// for every variant that runs it from that image.
func (r *Runner) recordServiceImages(vs []variant) error {
	for _, w := range r.Scenario.Workloads {
		svc := r.services[w.Name]
		if svc == nil {
			continue
		}
		u, uerr := svc.img.Usage()
		for _, v := range vs {
			if user, ok := v.d.(drivers.ServiceImageUser); !v.v.Runs(w.Name) || ok && !user.UsesServiceImage() {
				continue
			}
			s := results.Sample{Time: time.Now().UTC(), Variant: v.name, Workload: w.Name, Instances: 1, Unit: "B"}
			if uerr != nil {
				s.Metric, s.Error = results.MetricServiceImageAllocated, uerr.Error()
				if err := r.sink(s); err != nil {
					return err
				}
				continue
			}
			for _, m := range []struct {
				metric string
				v      int64
			}{{results.MetricServiceImageApparent, u.Apparent}, {results.MetricServiceImageAllocated, u.Allocated}} {
				s.Metric, s.Value = m.metric, float64(m.v)
				if err := r.sink(s); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
