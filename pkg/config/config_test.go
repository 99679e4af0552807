package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
)

type testConfig struct {
	Listen string `yaml:"listen"`
	Redis  struct {
		Addr    string        `yaml:"addr"`
		DB      int           `yaml:"db"`
		Timeout time.Duration `yaml:"timeout"`
	} `yaml:"redis"`
	Grace   model.Duration `yaml:"grace"`
	Debug   bool           `yaml:"debug"`
	Targets []string       `yaml:"targets"`
	Node_ID string         `yaml:"node_id"`
}

func TestLoadYAMLThenEnv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte("listen: \":1\"\nredis:\n  addr: a:1\n  db: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var c testConfig
	c.Listen = ":default"
	if err := Decode(mustRead(t, path), &c); err != nil {
		t.Fatal(err)
	}
	env := []string{"SLUICE_REDIS_ADDR=b:2", "SLUICE_REDIS_TIMEOUT=50ms", "SLUICE_GRACE=10s",
		"SLUICE_DEBUG=true", "SLUICE_TARGETS=x, y,", "SLUICE_NODE_ID=n7", "OTHER=1"}
	if err := ApplyEnv(Prefix, env, &c); err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":1" || c.Redis.Addr != "b:2" || c.Redis.DB != 2 || c.Redis.Timeout != 50*time.Millisecond ||
		c.Grace.D() != 10*time.Second || !c.Debug || strings.Join(c.Targets, "|") != "x|y" || c.Node_ID != "n7" {
		t.Fatalf("config = %+v", c)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestErrorsNameTheField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		env        []string
		want       string
	}{
		{"unknown field", "listne: x\n", nil, "listne"},
		{"wrong type", "redis:\n  db: many\n", nil, "many"},
		{"bad env int", "", []string{"SLUICE_REDIS_DB=x"}, "redis.db: SLUICE_REDIS_DB: "},
		{"bad env duration", "", []string{"SLUICE_REDIS_TIMEOUT=soon"}, "SLUICE_REDIS_TIMEOUT"},
		{"bad env bool", "", []string{"SLUICE_DEBUG=perhaps"}, "SLUICE_DEBUG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c testConfig
			err := Decode([]byte(tt.yaml), &c)
			if err == nil {
				err = ApplyEnv(Prefix, tt.env, &c)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %q", err, tt.want)
			}
		})
	}
}

func TestVarsListsEveryLeaf(t *testing.T) {
	t.Parallel()
	var names []string
	for _, v := range Vars(Prefix, &testConfig{}) {
		names = append(names, v.Name)
	}
	want := "SLUICE_DEBUG SLUICE_GRACE SLUICE_LISTEN SLUICE_NODE_ID SLUICE_REDIS_ADDR SLUICE_REDIS_DB SLUICE_REDIS_TIMEOUT SLUICE_TARGETS"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("Vars = %s\nwant  %s", got, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	var c testConfig
	if err := Load(filepath.Join(t.TempDir(), "absent.yaml"), &c); err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Fatalf("err = %v, want it to name the file", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("listen: \":1\"\nredis:\n  addr: a:1\n"))
	f.Add([]byte("grace: 1x\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("&a [*a, *a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c testConfig
		_ = Decode(data, &c)
	})
}

type Inlined struct {
	Addr string `yaml:"addr"`
	TLS  struct {
		CAFile string `yaml:"ca_file"`
	} `yaml:"tls"`
}

// An inlined struct's fields sit beside its parent's, in YAML and in the
// environment; nested structs extend the path at any depth.
func TestInlineAndNested(t *testing.T) {
	t.Parallel()
	var c struct {
		Redis struct {
			Inlined `yaml:",inline"`
			Timeout time.Duration `yaml:"timeout"`
		} `yaml:"redis"`
	}
	if err := Decode([]byte("redis:\n  addr: a:1\n  tls: {ca_file: /x}\n  timeout: 1s\n"), &c); err != nil {
		t.Fatal(err)
	}
	if err := ApplyEnv(Prefix, []string{"SLUICE_REDIS_TLS_CA_FILE=/y", "SLUICE_REDIS_TIMEOUT=2s"}, &c); err != nil {
		t.Fatal(err)
	}
	if c.Redis.Addr != "a:1" || c.Redis.TLS.CAFile != "/y" || c.Redis.Timeout != 2*time.Second {
		t.Fatalf("config = %+v", c)
	}
	var names []string
	for _, v := range Vars(Prefix, &c) {
		names = append(names, v.Name)
	}
	if got, want := strings.Join(names, " "), "SLUICE_REDIS_ADDR SLUICE_REDIS_TIMEOUT SLUICE_REDIS_TLS_CA_FILE"; got != want {
		t.Fatalf("Vars = %s, want %s", got, want)
	}
}
