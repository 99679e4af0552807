package deploycheck

import (
	"fmt"
	"path/filepath"

	"github.com/sluicegw/sluice/pkg/config"
)

// Service is what the deployment checks need to know of one binary, C its
// configuration type. Each service's test declares one and reports what
// Check returns.
type Service[C any] struct {
	// Binary is the binary's name, as the deployment files run it:
	// "sluice-gateway".
	Binary string
	// File is the name of its configuration file: config/<File> in the
	// deployments folder (the compose stack's) and the ConfigMap entries
	// of that name ("gateway.yaml").
	File string
	// Default returns the configuration with its defaults.
	Default func() C
	// Vars are the environment variables the binary reads (config.Vars).
	Vars []config.Var
	// Validate returns the configuration's problems (nil: none).
	Validate func(*C) error
	// Secrets, when set, fills in what the deployment's Secrets and
	// environment bring before Validate: a token, files mounted at the
	// paths the configuration names.
	Secrets func(*C)
}

// minConfigMaps is how many ConfigMap entries of a service's file the
// deployments hold at least: the Kubernetes manifests' and the Helm
// chart's rendered ones.
const minConfigMaps = 2

// Check runs every deployment check of s against the deployments folder
// dir and returns one error for each problem found:
//   - config/<File> loads, unknown fields refused, and is valid;
//   - every SLUICE_* variable docker-compose.yml, the Kubernetes manifests
//     and the Helm chart's rendered manifests give Binary is one it reads
//     (a misspelt variable would be silently ignored by the binary), and
//     they give it at least one;
//   - every <File> entry of a ConfigMap loads, unknown fields refused, and
//     is valid, and there are at least two (Kubernetes' and Helm's).
func (s Service[C]) Check(dir string) []error {
	var errs []error
	errs = append(errs, s.checkFile(dir)...)
	errs = append(errs, s.checkEnv(dir)...)
	return append(errs, s.checkConfigMaps(dir)...)
}

func (s Service[C]) checkFile(dir string) []error {
	name := filepath.Join("config", s.File)
	c := s.Default()
	if err := config.Load(filepath.Join(dir, name), &c); err != nil {
		return []error{err} // it names the file
	}
	if err := s.valid(&c); err != nil {
		return []error{fmt.Errorf("%s: %w", filepath.ToSlash(name), err)}
	}
	return nil
}

func (s Service[C]) checkEnv(dir string) []error {
	settings, err := EnvSettings(dir)
	if err != nil {
		return []error{err}
	}
	n, errs := CheckEnv(settings, s.Binary, s.Vars)
	if n == 0 {
		errs = append(errs, fmt.Errorf("no variable is given to %s: the files were not read", s.Binary))
	}
	return errs
}

func (s Service[C]) checkConfigMaps(dir string) []error {
	files, err := ConfigFiles(dir, s.File)
	if err != nil {
		return []error{err}
	}
	var errs []error
	if len(files) < minConfigMaps {
		errs = append(errs, fmt.Errorf("found %d %s ConfigMap entries, want k8s and Helm's", len(files), s.File))
	}
	for _, f := range files {
		c := s.Default()
		if err := config.Decode([]byte(f.Data), &c); err != nil {
			errs = append(errs, fmt.Errorf("%s: ConfigMap %s, %s: %w", f.File, f.ConfigMap, f.Key, err))
			continue
		}
		if err := s.valid(&c); err != nil {
			errs = append(errs, fmt.Errorf("%s: ConfigMap %s, %s: %w", f.File, f.ConfigMap, f.Key, err))
		}
	}
	return errs
}

// valid brings in the Secrets and validates c.
func (s Service[C]) valid(c *C) error {
	if s.Secrets != nil {
		s.Secrets(c)
	}
	return s.Validate(c)
}
