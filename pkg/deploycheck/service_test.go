package deploycheck

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/pkg/config"
)

// deployments is a small deployments folder: the image's entrypoint, a
// compose service, a Kubernetes manifest and a rendered Helm manifest,
// each with a ConfigMap holding test.yaml.
var deployments = map[string]string{
	"Dockerfile":         "FROM scratch\nENTRYPOINT [\"/usr/local/bin/sluice-gateway\"]\n",
	"docker-compose.yml": "services:\n  gw:\n    image: sluice:dev\n    environment: {SLUICE_REDIS_ADDR: r}\n",
	"config/test.yaml":   "redis: {addr: \"redis:6379\"}\n",
	"k8s/gw.yaml": "kind: ConfigMap\nmetadata: {name: c1}\ndata:\n  test.yaml: |\n    redis: {addr: \"redis:6379\"}\n---\n" +
		"kind: Deployment\nmetadata: {name: gw}\nspec:\n  template:\n    spec:\n      containers:\n" +
		"        - {name: gw, image: sluice:dev, env: [{name: SLUICE_NODE_ID}]}\n",
	"helm/rendered/default.yaml": "kind: ConfigMap\nmetadata: {name: c2}\ndata:\n  test.yaml: |\n    redis: {addr: \"redis:6379\"}\n",
}

func testService() Service[testConfig] {
	return Service[testConfig]{Binary: "sluice-gateway", File: "test.yaml",
		Default: func() testConfig { return testConfig{} },
		Vars:    config.Vars(config.Prefix, &testConfig{}),
		Validate: func(c *testConfig) error {
			if c.NodeID == "" {
				return errors.New("node_id: required")
			}
			return nil
		},
		Secrets: func(c *testConfig) { c.NodeID = "from-a-secret" },
	}
}

// TestServiceCheck: every check of Check passes on good files and fails,
// naming the file and the problem, when one file is wrong.
func TestServiceCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit map[string]string // file -> new content ("" removes it)
		svc  func(*Service[testConfig])
		want []string // substrings of the errors, in order
	}{
		{name: "good"},
		{name: "misspelt in compose", edit: map[string]string{"docker-compose.yml": "services:\n  gw:\n    image: sluice:dev\n    environment: [SLUICE_REDIS_ADR=r]\n"},
			want: []string{"docker-compose.yml: service gw (sluice-gateway) sets SLUICE_REDIS_ADR: sluice-gateway reads no such variable"}},
		{name: "misspelt in a manifest", edit: map[string]string{"k8s/gw.yaml": strings.Replace(deployments["k8s/gw.yaml"], "SLUICE_NODE_ID", "SLUICE_NODEID", 1)},
			want: []string{"k8s/gw.yaml: Deployment gw, container gw (sluice-gateway) sets SLUICE_NODEID"}},
		{name: "no variable given", edit: map[string]string{"docker-compose.yml": "services:\n  gw: {image: sluice:dev}\n",
			"k8s/gw.yaml": strings.Replace(deployments["k8s/gw.yaml"], "env: [{name: SLUICE_NODE_ID}]", "env: []", 1)},
			want: []string{"no variable is given to sluice-gateway"}},
		{name: "unknown field in the config file", edit: map[string]string{"config/test.yaml": "redis: {adr: x}\n"},
			want: []string{"field adr not found"}},
		{name: "config file missing", edit: map[string]string{"config/test.yaml": ""},
			want: []string{"test.yaml: no such file"}},
		{name: "unknown field in a ConfigMap", edit: map[string]string{"helm/rendered/default.yaml": strings.Replace(deployments["helm/rendered/default.yaml"], "redis:", "colour: red\n    redis:", 1)},
			want: []string{"helm/rendered/default.yaml: ConfigMap c2, test.yaml: yaml: unmarshal errors:\n  line 1: field colour not found"}},
		{name: "one ConfigMap", edit: map[string]string{"helm/rendered/default.yaml": "kind: Service\nmetadata: {name: s}\n"},
			want: []string{"found 1 test.yaml ConfigMap entries, want k8s and Helm's"}},
		{name: "invalid without the secrets", svc: func(s *Service[testConfig]) { s.Secrets = nil },
			want: []string{"config/test.yaml: node_id: required",
				"helm/rendered/default.yaml: ConfigMap c2, test.yaml: node_id: required", "k8s/gw.yaml: ConfigMap c1, test.yaml: node_id: required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, data := range deployments {
				if v, ok := tc.edit[name]; ok {
					data = v
				}
				if data == "" {
					continue
				}
				p := filepath.Join(dir, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s := testService()
			if tc.svc != nil {
				tc.svc(&s)
			}
			errs := s.Check(dir)
			if len(errs) != len(tc.want) {
				t.Fatalf("problems %q, want %d", errs, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("problem %q does not say %q", errs[i], w)
				}
			}
		})
	}
}
