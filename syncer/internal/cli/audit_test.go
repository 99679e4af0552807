package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/testutil"
)

func TestAudit(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	must(t, s.URL, apiYAMLBody("a1", "/a1/"), "apis", "create", "-f", "-")
	must(t, s.URL, "", "apis", "delete", "a1")

	out := must(t, s.URL, "", "audit")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "TIME") ||
		!strings.Contains(lines[1], "admin-token") || !strings.Contains(lines[1], "delete") ||
		!strings.Contains(lines[2], "put") || !strings.Contains(lines[2], "a1") {
		t.Fatalf("audit table:\n%s", out)
	}

	var entries []auditEntry
	if err := json.Unmarshal([]byte(must(t, s.URL, "", "audit", "-o", "json", "--kind", "api", "--limit", "1")), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Changes[0].Op != "delete" || entries[0].Changes[0].ETagBefore == "" || entries[0].Version != 2 {
		t.Fatalf("audit -o json --limit 1: %+v", entries)
	}
	if out := must(t, s.URL, "", "audit", "--actor", "nobody", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("no match: %q", out)
	}
	for _, args := range [][]string{{"audit", "--kind", "route"}, {"audit", "--since", "yesterday"}, {"audit", "--limit", "0"}} {
		if r := sluicectl(t, s.URL, "", args...); r.code == 0 {
			t.Errorf("%v: exit 0", args)
		} else if !strings.Contains(r.stderr, "kind") && !strings.Contains(r.stderr, "since") && !strings.Contains(r.stderr, "limit") {
			t.Errorf("%v: stderr does not name the problem: %s", args, r.stderr)
		}
	}
}

// lockedBuffer is an output the follow loop and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// --follow prints the entries there are, then each new one once.
func TestAuditFollow(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	must(t, s.URL, apiYAMLBody("a1", "/a1/"), "apis", "create", "-f", "-")
	out := &lockedBuffer{}
	env := Env{Stdout: out, Stderr: out, Getenv: func(k string) string {
		return map[string]string{"SLUICE_ADDR": s.URL, "SLUICE_ADMIN_TOKEN": testToken}[k]
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	done := make(chan int)
	go func() { done <- Run(ctx, []string{"audit", "--follow", "--interval", "100ms", "-o", "json"}, env) }()
	versions := func() []int64 {
		var vs []int64
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var e auditEntry
			if json.Unmarshal([]byte(l), &e) == nil {
				vs = append(vs, e.Version)
			}
		}
		return vs
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if fmt.Sprint(versions()) != "[1]" {
			return fmt.Errorf("versions %v", versions())
		}
		return nil
	})
	must(t, s.URL, apiYAMLBody("a2", "/a2/"), "apis", "create", "-f", "-")
	must(t, s.URL, "", "apis", "delete", "a1")
	testutil.WaitFor(t, 10*time.Second, func() error {
		if fmt.Sprint(versions()) != "[1 2 3]" {
			return fmt.Errorf("versions %v, output %s", versions(), out.String())
		}
		return nil
	})
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	if fmt.Sprint(versions()) != "[1 2 3]" {
		t.Fatalf("versions after stop %v", versions())
	}
}

// apiYAMLBody is an API definition for "apis create -f -".
func apiYAMLBody(id, listen string) string {
	return "id: " + id + "\nlisten_path: " + listen + "\nupstream: {targets: [\"http://127.0.0.1:1\"]}\nauth: {mode: keyless}\n"
}
