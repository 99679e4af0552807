// Package deploycheck reads the deployment files in deployments/ —
// docker-compose.yml, the Kubernetes manifests in k8s/ and the Helm chart's
// rendered manifests in helm/rendered/ — for the checks the services' tests
// make against their own configuration (Service.Check): every SLUICE_*
// variable a binary is given must be one it reads (pkg/config.Vars), and
// every configuration file, in config/ or a ConfigMap, must load and be
// valid. Only tests import it.
package deploycheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sluicegw/sluice/pkg/config"
)

// EnvSetting is one SLUICE_* variable set for a binary by a deployment file.
type EnvSetting struct {
	File   string // path relative to the deployments folder, e.g. k8s/gateway.yaml
	Where  string // e.g. "service gateway-1" or "Deployment sluice-gateway, container gateway"
	Binary string // e.g. sluice-gateway
	Name   string // e.g. SLUICE_NODE_ID
}

func (s EnvSetting) String() string {
	return fmt.Sprintf("%s: %s (%s) sets %s", s.File, s.Where, s.Binary, s.Name)
}

// Manifests lists the Kubernetes manifests under dir (the deployments
// folder): k8s/*.yaml and helm/rendered/*.yaml, relative to dir, sorted.
func Manifests(dir string) ([]string, error) {
	var out []string
	for _, pattern := range []string{"k8s/*.yaml", "helm/rendered/*.yaml"} {
		m, err := filepath.Glob(filepath.Join(dir, filepath.FromSlash(pattern)))
		if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("deploycheck: no file matches %s in %s", pattern, dir)
		}
		for _, f := range m {
			rel, _ := filepath.Rel(dir, f)
			out = append(out, filepath.ToSlash(rel))
		}
	}
	sort.Strings(out)
	return out, nil
}

// EnvSettings returns every SLUICE_* variable set in dir's docker-compose.yml
// and Kubernetes manifests, with the binary it is given to. A container's
// binary is its command (compose: entrypoint); without one, the image's
// entrypoint from dir's Dockerfile when the image is Sluice's.
func EnvSettings(dir string) ([]EnvSetting, error) {
	dockerfile, err := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	if err != nil {
		return nil, fmt.Errorf("deploycheck: %w", err)
	}
	entrypoint, err := DockerfileEntrypoint(dockerfile)
	if err != nil {
		return nil, err
	}
	compose, err := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
	if err != nil {
		return nil, fmt.Errorf("deploycheck: %w", err)
	}
	out, err := ComposeEnv("docker-compose.yml", compose, entrypoint)
	if err != nil {
		return nil, err
	}
	files, err := Manifests(dir)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return nil, fmt.Errorf("deploycheck: %w", err)
		}
		s, err := ManifestEnv(f, data, entrypoint)
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

var entrypointRE = regexp.MustCompile(`(?m)^ENTRYPOINT\s+\[\s*"([^"]+)"`)

// DockerfileEntrypoint returns the binary of a Dockerfile's last
// ENTRYPOINT in exec form.
func DockerfileEntrypoint(dockerfile []byte) (string, error) {
	m := entrypointRE.FindAllSubmatch(dockerfile, -1)
	if len(m) == 0 {
		return "", errors.New("deploycheck: the Dockerfile has no ENTRYPOINT [\"...\"]")
	}
	return path.Base(string(m[len(m)-1][1])), nil
}

// isSluiceImage tells whether an image reference is Sluice's own image
// (whose entrypoint the Dockerfile sets): its repository's last element is
// "sluice".
func isSluiceImage(image string) bool {
	name := image
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	name, _, _ = strings.Cut(name, "@")
	name, _, _ = strings.Cut(name, ":")
	return name == "sluice"
}

// binary names what a container runs: command[0], else the Sluice image's
// entrypoint, else "" (a binary that is not Sluice's).
func binary(command []string, image, entrypoint string) string {
	if len(command) > 0 {
		return path.Base(command[0])
	}
	if isSluiceImage(image) {
		return entrypoint
	}
	return ""
}

// ComposeEnv returns the SLUICE_* variables of a compose file's services.
// environment may be a map or a list of NAME=value; YAML merge keys
// (<<: *anchor) are followed.
func ComposeEnv(file string, data []byte, entrypoint string) ([]EnvSetting, error) {
	var doc struct {
		Services map[string]struct {
			Image       string   `yaml:"image"`
			Entrypoint  strList  `yaml:"entrypoint"`
			Environment envBlock `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("deploycheck: %s: %w", file, err)
	}
	if len(doc.Services) == 0 {
		return nil, fmt.Errorf("deploycheck: %s: no services", file)
	}
	var out []EnvSetting
	for _, name := range sortedKeys(doc.Services) {
		svc := doc.Services[name]
		s, err := settings(file, "service "+name, binary(svc.Entrypoint, svc.Image, entrypoint), svc.Environment)
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

// ManifestEnv returns the SLUICE_* variables of the containers (and init
// containers) of every workload in a multi-document Kubernetes manifest.
func ManifestEnv(file string, data []byte, entrypoint string) ([]EnvSetting, error) {
	type container struct {
		Name    string   `yaml:"name"`
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Env     []struct {
			Name string `yaml:"name"`
		} `yaml:"env"`
	}
	type podSpec struct {
		Containers     []container `yaml:"containers"`
		InitContainers []container `yaml:"initContainers"`
	}
	var out []EnvSetting
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var obj struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				podSpec  `yaml:",inline"`
				Template struct {
					Spec podSpec `yaml:"spec"`
				} `yaml:"template"`
				JobTemplate struct {
					Spec struct {
						Template struct {
							Spec podSpec `yaml:"spec"`
						} `yaml:"template"`
					} `yaml:"spec"`
				} `yaml:"jobTemplate"`
			} `yaml:"spec"`
		}
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("deploycheck: %s: %w", file, err)
		}
		var pod podSpec
		switch obj.Kind {
		case "Pod":
			pod = obj.Spec.podSpec
		case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
			pod = obj.Spec.Template.Spec
		case "CronJob":
			pod = obj.Spec.JobTemplate.Spec.Template.Spec
		default:
			continue
		}
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			env := envBlock{}
			for _, e := range c.Env {
				env = append(env, e.Name)
			}
			where := fmt.Sprintf("%s %s, container %s", obj.Kind, obj.Metadata.Name, c.Name)
			s, err := settings(file, where, binary(c.Command, c.Image, entrypoint), env)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		}
	}
	return out, nil
}

func settings(file, where, bin string, env envBlock) ([]EnvSetting, error) {
	var out []EnvSetting
	for _, name := range env {
		if !strings.HasPrefix(name, config.Prefix) {
			continue
		}
		if !strings.HasPrefix(bin, "sluice-") {
			return nil, fmt.Errorf("deploycheck: %s: %s sets %s but runs no Sluice binary (no command naming one)", file, where, name)
		}
		out = append(out, EnvSetting{File: file, Where: where, Binary: bin, Name: name})
	}
	return out, nil
}

// CheckEnv returns one error for each setting given to bin whose variable
// is not in known (the binary's configuration variables, config.Vars), and
// the number of settings given to bin.
func CheckEnv(settings []EnvSetting, bin string, known []config.Var) (n int, errs []error) {
	names := make(map[string]bool, len(known))
	for _, v := range known {
		names[v.Name] = true
	}
	for _, s := range settings {
		if s.Binary != bin {
			continue
		}
		n++
		if !names[s.Name] {
			errs = append(errs, fmt.Errorf("%v: %s reads no such variable (see %s --help)", s, bin, bin))
		}
	}
	return n, errs
}

// strList is a compose string-or-list field (entrypoint, command).
type strList []string

func (l *strList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = strings.Fields(n.Value)
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

// envBlock is the names of a compose environment: a map, or a list of
// NAME=value (or NAME alone, passed through from the host).
type envBlock []string

func (e *envBlock) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.MappingNode:
		var m map[string]any
		if err := n.Decode(&m); err != nil {
			return err
		}
		*e = sortedKeys(m)
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, kv := range l {
			name, _, _ := strings.Cut(kv, "=")
			*e = append(*e, name)
		}
	default:
		return fmt.Errorf("line %d: environment must be a map or a list", n.Line)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
