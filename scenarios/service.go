package scenarios

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"virtbench/drivers"
	"virtbench/images"
)

// Service is a workload given as the user's own image: its program runs in
// every driver that can run one, and the host probes it from outside to
// tell when it is ready.
type Service struct {
	// Image is where the image comes from (service.image); a relative
	// path is taken from the scenario file's directory.
	Image images.Source
	// File is the image's file or directory as the scenario gives it,
	// relative to the scenario file's directory unless absolute ("" for
	// an image the engine holds): what a campaign copies beside it.
	File string
	// Command replaces the image's Entrypoint and Cmd; nil keeps them.
	Command []string
	// Env is added to the image's Env, replacing a variable of the same
	// name.
	Env map[string]string
	// Port is the TCP port the service listens on inside its instance; 0
	// where it serves none (a log probe).
	Port int
	// Ready is how the host tells that the service is ready.
	Ready Ready
}

// Ready is a service's readiness probe, run from the host end of the
// instance's network path: exactly one of HTTP, TCP and Log.
type Ready struct {
	// HTTP is the path a GET is sent to until it answers Status.
	HTTP   string
	Status int
	// TCP probes with a connect.
	TCP bool
	// Log waits for a line of the service's output that matches it.
	Log *regexp.Regexp
}

// String says what the probe waits for.
func (r Ready) String() string {
	switch {
	case r.HTTP != "":
		return fmt.Sprintf("HTTP %d from GET %s", r.Status, r.HTTP)
	case r.TCP:
		return "a TCP connect"
	case r.Log != nil:
		return fmt.Sprintf("a line matching %q", r.Log.String())
	}
	return "nothing"
}

var (
	serviceFields = []string{"image", "command", "env", "port", "ready"}
	readyFields   = []string{"http", "status", "tcp", "log"}
)

// service parses a workload's service: {image, command, env, port, ready}.
func (p *parser) service(field string, n *yaml.Node) *Service {
	p.lines[field] = n.Line
	if n.Kind != yaml.MappingNode {
		p.fail(n, "service: expected a mapping with %s", strings.Join(serviceFields, ", "))
		return nil
	}
	svc := &Service{}
	p.fields("service", n, serviceFields, func(key string, v *yaml.Node) {
		p.lines[field+"."+key] = v.Line
		switch key {
		case "image":
			s, ok := p.scalar(v, "TRANSPORT:REFERENCE, e.g. docker-archive:images/web.tar")
			if !ok {
				return
			}
			src, err := images.ParseSource(s)
			if err != nil {
				p.fail(v, "service: %v", err)
				return
			}
			if svc.File = src.HostPath(); svc.File != "" && !filepath.IsAbs(svc.File) {
				src.Ref = filepath.Join(filepath.Dir(p.file), svc.File)
			}
			svc.Image = src
		case "command":
			svc.Command = []string{}
			for _, a := range p.list(field+".command", v) {
				if s, ok := p.scalar(a, "a command word"); ok {
					svc.Command = append(svc.Command, s)
				}
			}
		case "env":
			svc.Env = p.mapping(field+".env", v, "a mapping of variable names to values")
		case "port":
			svc.Port = p.integer(v)
			if svc.Port < 1 || svc.Port > 65535 {
				p.fail(v, "service: port %d is not between 1 and 65535", svc.Port)
			}
		case "ready":
			svc.Ready = p.ready(v)
		}
	})
	return svc
}

// ready parses a service's readiness probe: {http: /healthz, status: 200},
// {tcp: true} or {log: REGEXP}.
func (p *parser) ready(n *yaml.Node) Ready {
	r := Ready{Status: 200}
	if n.Kind != yaml.MappingNode {
		p.fail(n, "ready: expected a mapping: {http: PATH, status: CODE}, {tcp: true} or {log: REGEXP}")
		return r
	}
	probes := 0
	p.fields("ready", n, readyFields, func(key string, v *yaml.Node) {
		s, ok := p.scalar(v, "a value")
		if !ok {
			return
		}
		switch key {
		case "http":
			probes++
			if !strings.HasPrefix(s, "/") || strings.ContainsAny(s, " \r\n") {
				p.fail(v, "ready: http %q must be a path such as /healthz", s)
			}
			r.HTTP = s
		case "status":
			r.Status = p.integer(v)
			if r.Status < 100 || r.Status > 599 {
				p.fail(v, "ready: status %d is not an HTTP status (100-599)", r.Status)
			}
		case "tcp":
			probes++
			if s != "true" {
				p.fail(v, "ready: tcp must be true")
			}
			r.TCP = true
		case "log":
			probes++
			re, err := regexp.Compile(s)
			if err != nil {
				p.fail(v, "ready: log %q is not a regular expression: %v", s, err)
				return
			}
			r.Log = re
		}
	})
	if probes != 1 {
		p.fail(n, "ready: give exactly one probe: {http: PATH, status: CODE}, {tcp: true} or {log: REGEXP}")
	}
	return r
}

// checkService checks a service workload at field: its image can be read,
// its environment's names are names, a network probe has a port, and
// every variant that runs it has a driver that runs services.
func (s *Scenario) checkService(field string, w Workload, bad reporter) {
	svc := w.Service
	if svc.Image.Transport == "" {
		bad(field+".service", "service: an image is needed (service.image)")
	} else if err := svc.Image.Check(); err != nil {
		bad(field+".service.image", "service: image %s: %v", svc.Image, err)
	}
	for k, v := range svc.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsAny(v, "\x00\n\r") {
			bad(field+".service.env."+k, "service: env %q=%q: a name holds no '=' or NUL, a value no NUL or newline", k, v)
		}
	}
	for _, a := range svc.Command {
		if strings.ContainsAny(a, "\x00\n\r") {
			bad(field+".service.command", "service: a command word holds a newline, a carriage return or a NUL byte")
		}
	}
	if svc.Port == 0 && svc.Ready.Log == nil {
		bad(field+".service", "service: a port is needed for the %s probe", svc.Ready)
	}
	if len(w.Args) > 0 {
		bad(field, "workloads: %s: a service takes no args (its command is service.command)", w.Name)
	}
	for i, v := range s.Drivers {
		info, err := drivers.Lookup(v.Driver)
		if err == nil && v.Runs(w.Name) && !info.Services {
			bad(fmt.Sprintf("drivers.%d", i), "drivers: %s cannot run a service such as %s (drivers that can: %s); restrict it with its workloads", v.Name, w.Name, strings.Join(serviceDrivers(), ", "))
		}
	}
}

// Files returns the files and directories of the host that the
// scenario's services read, as the file gives them (Service.File), in
// order: what a campaign copies beside the scenario file.
func (s *Scenario) Files() []string {
	var out []string
	for _, w := range s.Workloads {
		if w.Service != nil && w.Service.File != "" {
			out = append(out, w.Service.File)
		}
	}
	return out
}

// serviceDrivers names the drivers that run services.
func serviceDrivers() []string {
	var out []string
	for _, d := range drivers.Drivers() {
		if d.Services {
			out = append(out, d.Name)
		}
	}
	return out
}
