package deploycheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// ConfigFile is one entry of a ConfigMap in a manifest.
type ConfigFile struct {
	File      string // manifest, relative to the deployments folder
	ConfigMap string
	Key       string // e.g. gateway.yaml
	Data      string
}

// ConfigFiles returns the entries named key (e.g. "gateway.yaml") of every
// ConfigMap in the manifests under dir (see Manifests).
func ConfigFiles(dir, key string) ([]ConfigFile, error) {
	files, err := Manifests(dir)
	if err != nil {
		return nil, err
	}
	var out []ConfigFile
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return nil, fmt.Errorf("deploycheck: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var obj struct {
				Kind     string `yaml:"kind"`
				Metadata struct {
					Name string `yaml:"name"`
				} `yaml:"metadata"`
				Data map[string]string `yaml:"data"`
			}
			err := dec.Decode(&obj)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("deploycheck: %s: %w", f, err)
			}
			if v, ok := obj.Data[key]; ok && obj.Kind == "ConfigMap" {
				out = append(out, ConfigFile{File: f, ConfigMap: obj.Metadata.Name, Key: key, Data: v})
			}
		}
	}
	return out, nil
}
