package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	if errs := Default().Validate(); len(errs) > 0 {
		t.Fatalf("defaults refused: %v", errs)
	}
	errs := Config{Level: "loud", Format: "xml"}.Validate()
	if len(errs) != 2 || errs[0].Field != "level" || errs[1].Field != "format" {
		t.Fatalf("problems %v, want level and format", errs)
	}
	if errs := (Config{Level: "", Format: "json"}).Validate(); len(errs) != 1 || errs[0].Field != "level" {
		t.Fatalf("empty level: %v", errs)
	}
}

// A buffer is not a terminal: auto writes JSON lines carrying the service,
// and the level filters.
func TestNewWritesJSONAtTheLevel(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := New(Config{Level: "warn", Format: "auto"}, &buf, "sluice-test")
	log.Info().Msg("dropped")
	log.Warn().Str("k", "v").Msg("kept")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("lines %q, want the warning only", lines)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	if m["service"] != "sluice-test" || m["message"] != "kept" || m["level"] != "warn" || m["k"] != "v" || m["time"] == nil {
		t.Fatalf("line %v", m)
	}
}

func TestNewConsoleFormat(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := New(Config{Level: "info", Format: "console"}, &buf, "svc")
	log.Info().Msg("hello")
	if out := buf.String(); strings.HasPrefix(out, "{") || !strings.Contains(out, "hello") {
		t.Fatalf("console output %q", out)
	}
}
