package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestVersionFlag(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run([]string{"--version"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	if line := out.String(); !strings.HasPrefix(line, "sluice-analytics ") || !strings.Contains(line, "commit ") || !strings.Contains(line, "go1.") {
		t.Fatalf("--version printed %q", line)
	}
}
