package images

import (
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"virtbench/internal/tools"
)

// ExamplePort is the port the example nginx image listens on by default.
const ExamplePort = 8080

// exampleConf is the example image's nginx configuration: one worker,
// in the foreground, logging to its output, serving /srv/www.
const exampleConf = `user root root;
worker_processes 1;
daemon off;
pid /tmp/nginx.pid;
error_log stderr notice;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path /tmp/body;
	proxy_temp_path /tmp/proxy;
	fastcgi_temp_path /tmp/fastcgi;
	uwsgi_temp_path /tmp/uwsgi;
	scgi_temp_path /tmp/scgi;
	server {
		listen %d;
		root /srv/www;
		location = /healthz { return 200 "ok\n"; }
	}
}
`

// ExampleImage builds, in the directory dir, the root of an nginx image
// listening on port
// from the host's nginx (Debian's nginx-light) and every library it loads,
// and returns it as a one-layer image whose configuration runs it: what
// the tests and the example scenario serve in every driver, made here
// since no registry can be reached.
func ExampleImage(dir string, port int) (v1.Image, error) {
	if err := tools.Nginx.Check(); err != nil {
		return nil, fmt.Errorf("images: example image: %w", err)
	}
	libs, err := sharedLibraries(tools.Nginx.Path)
	if err != nil {
		return nil, fmt.Errorf("images: example image: %w", err)
	}
	files := map[string]string{
		"etc/passwd":           "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"etc/group":            "root:x:0:\nnogroup:x:65534:\n",
		"etc/nginx/nginx.conf": fmt.Sprintf(exampleConf, port),
		"srv/www/index.html":   "<h1>virtbench example service</h1>\n",
	}
	if err := writeFiles(dir, files); err != nil {
		return nil, err
	}
	for _, d := range []string{"tmp", "var/log/nginx", "var/lib/nginx", "proc", "sys", "dev"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777|os.ModeSticky); err != nil {
		return nil, err
	}
	for _, src := range append([]string{tools.Nginx.Path}, libs...) {
		dst := filepath.Join(dir, src)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := copyFile(src, dst, 0o755); err != nil {
			return nil, fmt.Errorf("images: example image: %w", err)
		}
	}
	return ImageOfDir(dir, v1.Config{
		Entrypoint:   []string{tools.Nginx.Path},
		Cmd:          []string{"-c", "/etc/nginx/nginx.conf"},
		Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		WorkingDir:   "/",
		ExposedPorts: map[string]struct{}{fmt.Sprintf("%d/tcp", port): {}},
	})
}

// WriteOCILayout writes img as an OCI image layout in dir, tagged tag.
func WriteOCILayout(dir, tag string, img v1.Image) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{refNameAnnotation: tag}))
}

// writeFiles writes files (by path relative to root) under root, making
// their directories.
func writeFiles(root string, files map[string]string) error {
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}
