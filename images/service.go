package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"virtbench/guest/vminit"
)

// The transports of a service's image (scenario key service.image,
// TRANSPORT:REFERENCE).
const (
	DockerArchive = "docker-archive" // a `docker save` archive: docker-archive:FILE
	OCIArchive    = "oci-archive"    // a tar of an OCI layout: oci-archive:FILE
	OCILayout     = "oci"            // an OCI image layout: oci:DIR[:TAG]
	RootfsDir     = "rootfs"         // a root directory, used as it is: rootfs:DIR
	DockerEngine  = "docker"         // an image the local engine holds: docker:NAME[:TAG]
)

// Transports are the transports ParseSource accepts.
var Transports = []string{DockerArchive, OCIArchive, OCILayout, RootfsDir, DockerEngine}

// Source is where a service's image comes from.
type Source struct {
	Transport string
	// Ref is the file or directory on the host (every transport but
	// docker), or the engine's image name.
	Ref string
	// Tag picks one image of an OCI layout by its
	// org.opencontainers.image.ref.name annotation ("": its only image).
	Tag string
}

// ParseSource parses TRANSPORT:REFERENCE.
func ParseSource(s string) (Source, error) {
	t, ref, ok := strings.Cut(s, ":")
	if !ok || ref == "" {
		return Source{}, fmt.Errorf("image %q must be TRANSPORT:REFERENCE, TRANSPORT one of %s", s, strings.Join(Transports, ", "))
	}
	if !slices.Contains(Transports, t) {
		return Source{}, fmt.Errorf("image %q: unknown transport %q (one of %s)", s, t, strings.Join(Transports, ", "))
	}
	src := Source{Transport: t, Ref: ref}
	if t == OCILayout {
		if i := strings.LastIndexByte(ref, ':'); i > 0 && !strings.Contains(ref[i:], "/") {
			src.Ref, src.Tag = ref[:i], ref[i+1:]
		}
	}
	return src, nil
}

func (s Source) String() string {
	if s.Tag != "" {
		return s.Transport + ":" + s.Ref + ":" + s.Tag
	}
	return s.Transport + ":" + s.Ref
}

// HostPath is the host file or directory the image is read from; "" for
// an image of the engine.
func (s Source) HostPath() string {
	if s.Transport == DockerEngine {
		return ""
	}
	return s.Ref
}

// Check reports, without reading it whole, whether the source's file or
// directory exists and is of the kind its transport reads.
func (s Source) Check() error {
	p := s.HostPath()
	if p == "" {
		return nil
	}
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	wantDir := s.Transport == OCILayout || s.Transport == RootfsDir
	switch {
	case wantDir && !fi.IsDir():
		return fmt.Errorf("%s is not a directory (%s: reads one)", p, s.Transport)
	case !wantDir && !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a file (%s: reads an archive)", p, s.Transport)
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	return f.Close()
}

// ImageConfig is what an image's configuration supplies a service's
// defaults with.
type ImageConfig struct {
	Entrypoint   []string `json:"entrypoint,omitempty"`
	Cmd          []string `json:"cmd,omitempty"`
	Env          []string `json:"env,omitempty"`
	WorkingDir   string   `json:"working_dir,omitempty"`
	User         string   `json:"user,omitempty"`
	ExposedPorts []string `json:"exposed_ports,omitempty"`
}

// Service is a service's image, unpacked and cached.
type Service struct {
	Source Source
	// Digest is the image's manifest digest ("sha256:…"); "" for a root
	// directory.
	Digest string
	// Root is the unpacked root: a read-only lower layer every instance
	// shares.
	Root   string
	Config ImageConfig
	// Archive is a docker-archive of the image that an engine loads
	// (`docker load`), written beside Root; "" for a root directory and an
	// image the engine holds.
	Archive string
	// Tag is the name the image has in an engine once loaded.
	Tag string
}

// ServiceRepo is the repository an engine holds the services' images in
// once virtbench loaded them (Service.Tag).
const ServiceRepo = "virtbench-service"

// serviceLayout changes whenever the layout UnpackService writes changes.
const serviceLayout = "service-v1"

// UnpackService reads the image of src with go-containerregistry, and
// unpacks its filesystem (layers applied in order, whiteouts too)
// safely (Unpack, within DefaultUnpackLimits) into cacheDir/services/DIGEST,
// once per manifest digest. A root directory is used where it is.
func UnpackService(ctx context.Context, cacheDir string, src Source) (Service, error) {
	if src.Transport == RootfsDir {
		abs, err := filepath.Abs(src.Ref)
		if err != nil {
			return Service{}, err
		}
		if err := src.Check(); err != nil {
			return Service{}, fmt.Errorf("images: %s: %w", src, err)
		}
		return Service{Source: src, Root: abs}, nil
	}
	work := filepath.Join(cacheDir, "services")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return Service{}, err
	}
	img, cleanup, err := openImage(ctx, work, src)
	if err != nil {
		return Service{}, fmt.Errorf("images: %s: %w", src, err)
	}
	defer cleanup()
	digest, err := img.Digest()
	if err != nil {
		return Service{}, fmt.Errorf("images: %s: %w", src, err)
	}
	dir := filepath.Join(work, serviceLayout+"-"+digest.Hex[:16])
	svc := Service{Source: src, Digest: digest.String(), Root: filepath.Join(dir, "root"),
		Tag: ServiceRepo + ":" + digest.Hex[:16]}
	if src.Transport != DockerEngine {
		svc.Archive = filepath.Join(dir, "image.tar")
	}
	marker := filepath.Join(dir, "config.json")
	err = buildDir(dir, marker, func(tmp string) error {
		if err := os.Chmod(tmp, 0o755); err != nil {
			return err
		}
		cfg, err := imageConfig(img)
		if err != nil {
			return err
		}
		root := filepath.Join(tmp, "root")
		if err := os.Mkdir(root, 0o755); err != nil {
			return err
		}
		if err := UnpackImage(img, root, DefaultUnpackLimits); err != nil {
			return err
		}
		if svc.Archive != "" {
			if err := WriteDockerArchive(filepath.Join(tmp, "image.tar"), svc.Tag, img); err != nil {
				return err
			}
		}
		b, err := json.Marshal(cfg)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, "config.json"), b, 0o644)
	})
	if err != nil {
		return Service{}, fmt.Errorf("images: %s: %w", src, err)
	}
	b, err := os.ReadFile(marker)
	if err != nil {
		return Service{}, err
	}
	if err := json.Unmarshal(b, &svc.Config); err != nil {
		return Service{}, fmt.Errorf("images: %s: %w", marker, err)
	}
	return svc, nil
}

// Usage returns the disk footprint of the service's unpacked root: its
// layers, counted once however many instances share them.
func (s Service) Usage() (Usage, error) { return DiskUsage(s.Root) }

func imageConfig(img v1.Image) (ImageConfig, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return ImageConfig{}, fmt.Errorf("image configuration: %w", err)
	}
	c := cf.Config
	out := ImageConfig{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User}
	for p := range c.ExposedPorts {
		out.ExposedPorts = append(out.ExposedPorts, p)
	}
	sort.Strings(out.ExposedPorts)
	return out, nil
}

// openImage opens src's image; cleanup removes what reading it needed in
// work (an OCI archive's layout, the engine's saved image).
func openImage(ctx context.Context, work string, src Source) (v1.Image, func(), error) {
	none := func() {}
	switch src.Transport {
	case DockerArchive:
		if err := src.Check(); err != nil {
			return nil, none, err
		}
		img, err := tarball.ImageFromPath(src.Ref, nil)
		return img, none, err
	case OCILayout:
		if err := src.Check(); err != nil {
			return nil, none, err
		}
		img, err := layoutImage(src.Ref, src.Tag)
		return img, none, err
	}
	tmp, err := os.MkdirTemp(work, ".read-")
	if err != nil {
		return nil, none, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	img, err := func() (v1.Image, error) {
		switch src.Transport {
		case OCIArchive:
			f, err := os.Open(src.Ref)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			if err := Unpack([]io.Reader{f}, tmp, DefaultUnpackLimits); err != nil {
				return nil, fmt.Errorf("not an OCI archive: %w", err)
			}
			return layoutImage(tmp, src.Tag)
		default: // DockerEngine
			file := filepath.Join(tmp, "image.tar")
			out, err := exec.CommandContext(ctx, "docker", "save", "-o", file, src.Ref).CombinedOutput()
			if err != nil {
				return nil, fmt.Errorf("docker save: %v: %s", err, strings.TrimSpace(string(out)))
			}
			return tarball.ImageFromPath(file, nil)
		}
	}()
	if err != nil {
		cleanup()
		return nil, none, err
	}
	return img, cleanup, nil
}

// refNameAnnotation names an image within an OCI layout.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// layoutImage returns the image of the OCI layout dir tagged tag, or its
// only image when tag is "".
func layoutImage(dir, tag string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("not an OCI layout: %w", err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("not an OCI layout: %w", err)
	}
	var picked []v1.Descriptor
	for _, d := range m.Manifests {
		if tag == "" || d.Annotations[refNameAnnotation] == tag {
			picked = append(picked, d)
		}
	}
	switch {
	case len(picked) == 0 && tag != "":
		return nil, fmt.Errorf("the layout has no image tagged %q", tag)
	case len(picked) != 1:
		return nil, fmt.Errorf("the layout holds %d images: name one (oci:DIR:TAG)", len(picked))
	}
	return idx.Image(picked[0].Digest)
}

// writeDockerArchive writes img as a docker-archive that names it tag.
func WriteDockerArchive(file, tag string, img v1.Image) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(file, ref, img)
}

// ImageOfDir returns the tree at dir as a one-layer image with cfg: what
// the tests pack as archives and layouts, and a root directory's image.
func ImageOfDir(dir string, cfg v1.Config) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(WriteTar(pw, dir)) }()
		return pr, nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.OS, cf.Architecture = "linux", "amd64"
	return mutate.ConfigFile(img, cf)
}

// ServiceAgentPath is where BuildServiceLayer puts the agent: a path no
// image uses, so that the layer shadows nothing of the image's.
const ServiceAgentPath = "/.virtbench/virtbench-guest"

// BuildServiceLayer returns a layer, cached per agent, to stack over a
// service's root (an overlay lower layer above it): the agent at
// ServiceAgentPath and the mount points an instance's init needs (proc,
// sys, dev, tmp), which a minimal image may lack.
func BuildServiceLayer(cacheDir, agent string) (string, error) {
	sum, err := fileHash(agent)
	if err != nil {
		return "", fmt.Errorf("images: service layer: %w", err)
	}
	dir := filepath.Join(cacheDir, "service-layer", sum[:16])
	marker := filepath.Join(dir, ServiceAgentPath)
	err = buildDir(dir, marker, func(tmp string) error {
		if err := os.Chmod(tmp, 0o755); err != nil {
			return err
		}
		for _, d := range []string{"proc", "sys", "dev", "tmp", filepath.Dir(ServiceAgentPath)} {
			if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
				return err
			}
		}
		if err := os.Chmod(filepath.Join(tmp, "tmp"), 0o1777|os.ModeSticky); err != nil {
			return err
		}
		return copyFile(agent, filepath.Join(tmp, ServiceAgentPath), 0o755)
	})
	if err != nil {
		return "", fmt.Errorf("images: service layer: %w", err)
	}
	return dir, nil
}

// BuildServiceDisk returns a raw ext4 image labelled vminit.ServiceLabel
// that holds the service's root at its own root: a VM's read-only service
// disk (Kata-style: the image's root under virtbench's kernel and init),
// shared by every VM of the service. It is made once per image, beside
// the unpacked root (under cacheDir for a root directory).
func BuildServiceDisk(cacheDir string, svc Service) (string, error) {
	path := filepath.Join(filepath.Dir(svc.Root), "root.ext4")
	if svc.Digest == "" {
		sum := sha256.Sum256([]byte(svc.Root))
		path = filepath.Join(cacheDir, "services", "rootfs-"+hex.EncodeToString(sum[:8])+".ext4")
	}
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := makeExt4Of(path, vminit.ServiceLabel, svc.Root); err != nil {
		return "", fmt.Errorf("images: service disk: %w", err)
	}
	return path, nil
}
