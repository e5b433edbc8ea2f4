package deploy

import (
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// manifest is what the test reads of a Job or DaemonSet.
type manifest struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Spec       struct {
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	RestartPolicy string            `yaml:"restartPolicy"`
	NodeSelector  map[string]string `yaml:"nodeSelector"`
	Containers    []struct {
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Env     []struct {
			Name      string `yaml:"name"`
			ValueFrom struct {
				FieldRef struct {
					FieldPath string `yaml:"fieldPath"`
				} `yaml:"fieldRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		SecurityContext struct {
			Privileged bool `yaml:"privileged"`
		} `yaml:"securityContext"`
		Resources struct {
			Limits map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name     string `yaml:"name"`
		HostPath struct {
			Path string `yaml:"path"`
		} `yaml:"hostPath"`
	} `yaml:"volumes"`
}

// TestKubernetesManifests checks the manifests offline (there is no
// cluster here): each is the kind it says, selects its nodes by a label,
// runs virtbench's run into a directory named after its node on the
// node's disk, privileged, with the cgroup tree and /dev/kvm mounted and
// limits virtbench plans within, and every volume it mounts is declared.
func TestKubernetesManifests(t *testing.T) {
	for _, tt := range []struct{ file, kind string }{{"kubernetes/job.yaml", "Job"}, {"kubernetes/daemonset.yaml", "DaemonSet"}} {
		t.Run(tt.kind, func(t *testing.T) {
			b, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			var m manifest
			if err := yaml.Unmarshal(b, &m); err != nil {
				t.Fatalf("%s: %v", tt.file, err)
			}
			spec := m.Spec.Template.Spec
			if m.Kind != tt.kind || len(spec.NodeSelector) == 0 || len(spec.Containers) != 1 {
				t.Fatalf("%s: kind %q, node selector %v, %d containers: want a %s selecting its nodes, one container", tt.file, m.Kind, spec.NodeSelector, len(spec.Containers), tt.kind)
			}
			if tt.kind == "Job" && spec.RestartPolicy != "Never" {
				t.Errorf("%s: restartPolicy %q: a failed run must not be run again over its own directory", tt.file, spec.RestartPolicy)
			}
			c := spec.Containers[0]
			cmd := strings.Join(c.Command, " ")
			if !strings.Contains(cmd, "/opt/virtbench/virtbench run") || !strings.Contains(cmd, "-out /results/$(NODE_NAME)") {
				t.Errorf("%s: command %q: want virtbench run into /results/$(NODE_NAME)", tt.file, cmd)
			}
			nodeName := false
			for _, e := range c.Env {
				nodeName = nodeName || e.Name == "NODE_NAME" && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
			}
			if !nodeName || !c.SecurityContext.Privileged || c.Resources.Limits["memory"] == "" || c.Resources.Limits["cpu"] == "" {
				t.Errorf("%s: NODE_NAME from spec.nodeName %v, privileged %v, limits %v", tt.file, nodeName, c.SecurityContext.Privileged, c.Resources.Limits)
			}
			var declared, mounts []string
			for _, v := range spec.Volumes {
				declared = append(declared, v.Name)
			}
			for _, vm := range c.VolumeMounts {
				mounts = append(mounts, vm.MountPath)
				if !slices.Contains(declared, vm.Name) {
					t.Errorf("%s: mounts volume %q, which is not declared", tt.file, vm.Name)
				}
			}
			for _, want := range []string{"/results", "/sys/fs/cgroup", "/var/lib/virtbench", "/dev/kvm"} {
				if !slices.Contains(mounts, want) {
					t.Errorf("%s: nothing mounted on %s", tt.file, want)
				}
			}
		})
	}
}
