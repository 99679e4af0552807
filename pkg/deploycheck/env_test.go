package deploycheck

import (
	"strings"
	"testing"

	"github.com/sluicegw/sluice/pkg/config"
)

type testConfig struct {
	NodeID string `yaml:"node_id"`
	Redis  struct {
		Addr string `yaml:"addr"`
	} `yaml:"redis"`
}

// A variable the binary does not read is reported with its file, its
// container and its name; variables of other binaries and of other images
// are not the check's business.
func TestCheckEnv(t *testing.T) {
	t.Parallel()
	known := config.Vars(config.Prefix, &testConfig{})
	tests := []struct {
		name    string
		compose string
		k8s     string
		n       int
		want    []string // substrings of the errors, in order
	}{
		{
			name: "known names",
			compose: "services:\n  gw:\n    image: sluice:dev\n    environment:\n      SLUICE_NODE_ID: a\n" +
				"  redis:\n    image: redis:7.2\n    environment: [REDIS_ARGS=x]\n",
			k8s: "kind: Deployment\nmetadata: {name: gw}\nspec:\n  template:\n    spec:\n      containers:\n" +
				"        - {name: gw, image: sluice:dev, command: [/usr/local/bin/sluice-gateway], env: [{name: SLUICE_REDIS_ADDR, value: r:6379}, {name: GOMAXPROCS, value: '2'}]}\n",
			n: 2,
		},
		{
			name:    "misspelt in compose",
			compose: "services:\n  gw:\n    image: sluice:dev\n    environment: [SLUICE_NODEID=a, SLUICE_REDIS_ADDR]\n",
			n:       2,
			want:    []string{"docker-compose.yml: service gw (sluice-gateway) sets SLUICE_NODEID: sluice-gateway reads no such variable"},
		},
		{
			name:    "misspelt in a manifest",
			compose: "services:\n  gw: {image: sluice:dev}\n",
			k8s: "kind: ConfigMap\nmetadata: {name: c}\ndata: {SLUICE_X: y}\n---\n" +
				"kind: StatefulSet\nmetadata: {name: gw}\nspec:\n  template:\n    spec:\n      initContainers:\n" +
				"        - {name: init, image: sluice:dev, env: [{name: SLUICE_REDIS_ADR}]}\n",
			n:    1,
			want: []string{"k8s/x.yaml: StatefulSet gw, container init (sluice-gateway) sets SLUICE_REDIS_ADR"},
		},
		{
			name:    "another binary's variables are not checked",
			compose: "services:\n  s:\n    image: sluice:dev\n    entrypoint: [/usr/local/bin/sluice-syncer]\n    environment: {SLUICE_ADMIN_TOKEN: x}\n",
			n:       0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := ComposeEnv("docker-compose.yml", []byte(tc.compose), "sluice-gateway")
			if err != nil {
				t.Fatal(err)
			}
			m, err := ManifestEnv("k8s/x.yaml", []byte(tc.k8s), "sluice-gateway")
			if err != nil {
				t.Fatal(err)
			}
			n, errs := CheckEnv(append(s, m...), "sluice-gateway", known)
			if n != tc.n {
				t.Errorf("checked %d settings, want %d", n, tc.n)
			}
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %v, want %d", errs, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %q does not contain %q", errs[i], w)
				}
			}
		})
	}
}

// A SLUICE_* variable on a container that runs no Sluice binary is an
// error: the check could not tell which configuration it belongs to.
func TestEnvWithoutBinary(t *testing.T) {
	t.Parallel()
	_, err := ComposeEnv("c.yml", []byte("services:\n  x:\n    image: other:1\n    environment: {SLUICE_NODE_ID: a}\n"), "sluice-gateway")
	if err == nil || !strings.Contains(err.Error(), "service x sets SLUICE_NODE_ID but runs no Sluice binary") {
		t.Fatalf("err = %v", err)
	}
	_, err = ManifestEnv("m.yaml", []byte("kind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: busybox, env: [{name: SLUICE_A}]}]\n"), "sluice-gateway")
	if err == nil || !strings.Contains(err.Error(), "Pod p, container c sets SLUICE_A") {
		t.Fatalf("err = %v", err)
	}
}

// Compose merge keys (<<: *anchor) carry the entrypoint and image.
func TestComposeMergeKeys(t *testing.T) {
	t.Parallel()
	compose := "x-s: &s\n  image: sluice:dev\n  entrypoint: [\"/usr/local/bin/sluice-analytics\"]\n" +
		"services:\n  a:\n    <<: *s\n    environment: {SLUICE_AUTH_TOKEN: t}\n"
	s, err := ComposeEnv("c.yml", []byte(compose), "sluice-gateway")
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 1 || s[0].Binary != "sluice-analytics" || s[0].Name != "SLUICE_AUTH_TOKEN" {
		t.Fatalf("settings %v", s)
	}
}

func TestDockerfileEntrypoint(t *testing.T) {
	t.Parallel()
	got, err := DockerfileEntrypoint([]byte("FROM a AS b\nENTRYPOINT [\"/bin/x\"]\nFROM c\nENTRYPOINT [ \"/usr/local/bin/sluice-gateway\" ]\nCMD [\"--config\"]\n"))
	if err != nil || got != "sluice-gateway" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := DockerfileEntrypoint([]byte("FROM a\nCMD [\"x\"]\n")); err == nil {
		t.Fatal("no error for a Dockerfile without ENTRYPOINT")
	}
}

func TestIsSluiceImage(t *testing.T) {
	t.Parallel()
	for img, want := range map[string]bool{
		"sluice": true, "sluice:dev": true, "ghcr.io/sluicegw/sluice:1.2@sha256:ab": true, "localhost:5000/sluice": true,
		"redis:7.2": false, "sluice-other:1": false, "nats": false,
	} {
		if got := isSluiceImage(img); got != want {
			t.Errorf("isSluiceImage(%q) = %v", img, got)
		}
	}
}
