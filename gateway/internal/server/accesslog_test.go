package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// readLines waits until the access log file holds want lines (the writer
// flushes every 200ms) and returns them decoded.
func readLines(t *testing.T, path string, want int) []map[string]any {
	t.Helper()
	var lines []map[string]any
	testutil.WaitFor(t, 10*time.Second, func() error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		lines = lines[:0]
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("not JSON: %q: %v", sc.Text(), err)
			}
			lines = append(lines, m)
		}
		if len(lines) < want {
			return errors.New("waiting for access log lines")
		}
		return nil
	})
	return lines
}

// TestAccessLog: each mode logs what it says, with the documented fields;
// the key never appears, the query only when asked for.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := echoUpstream(t).URL
	keyed := keyless("keyed", "/keyed", up)
	keyed.Auth.Mode = model.AuthAPIKey
	keyed.Auth.QueryParam = "api_key"
	c.put(keyless("open", "/open", up), keyed, keyFor(secret, func(k *model.Key) {
		k.Access = []model.AccessRight{{API: "keyed"}}
	}))
	tests := []struct {
		name  string
		opts  AccessLogOptions
		lines int // of the four requests below: 200, 200 (key), 401, 404
	}{
		{"all", AccessLogOptions{Mode: AccessLogAll}, 4},
		{"errors", AccessLogOptions{Mode: AccessLogErrors}, 2},
		{"sampled one in two", AccessLogOptions{Mode: AccessLogSampled, Sample: 2}, 3},
		{"all with query", AccessLogOptions{Mode: AccessLogAll, Query: true}, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "access.log")
			tc.opts.Path = path
			n := c.node(func(o *Options) { o.AccessLog = tc.opts })
			do(t, "GET", n.url+"/open/a?x=1", "X-Request-ID", "rid-1")
			do(t, "GET", n.url+"/keyed/b?api_key="+secret)
			do(t, "GET", n.url+"/keyed/c?api_key=wrong-key-of-enough-length")
			do(t, "GET", n.url+"/nowhere?x=2")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := n.srv.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			raw, _ := os.ReadFile(path)
			if strings.Contains(string(raw), secret) || strings.Contains(string(raw), "wrong-key") {
				t.Fatalf("access log carries a key: %s", raw)
			}
			lines := readLines(t, path, tc.lines)
			if len(lines) != tc.lines {
				t.Fatalf("%d lines, want %d: %s", len(lines), tc.lines, raw)
			}
			for _, l := range lines {
				for _, f := range []string{"time", "node", "method", "path", "status", "latency_us", "bytes_in", "bytes_out", "client_ip", "request_id"} {
					if _, ok := l[f]; !ok {
						t.Errorf("line without %s: %v", f, l)
					}
				}
				if q, ok := l["query"]; ok && (!tc.opts.Query || q != "x=1" || l["api"] != "open") {
					t.Errorf("query logged: %v (only x=1 of the keyless API may be)", l)
				}
				if strings.Contains(l["path"].(string), "?") {
					t.Errorf("path with query: %v", l)
				}
			}
			if tc.opts.Mode != AccessLogAll {
				return
			}
			first := lines[0]
			if q, _ := first["query"].(string); tc.opts.Query && q != "x=1" {
				t.Errorf("query of the first line = %q, want x=1", q)
			}
			if first["api"] != "open" || first["request_id"] != "rid-1" || first["status"] != 200.0 || first["path"] != "/open/a" {
				t.Errorf("first line %v", first)
			}
			if _, ok := first["upstream_us"]; !ok {
				t.Errorf("served request without upstream_us: %v", first)
			}
			if lines[1]["key_id"] != keyFor(secret).ID {
				t.Errorf("keyed line %v, want key_id %s", lines[1], keyFor(secret).ID)
			}
			if lines[2]["error"] != "invalid_key" || lines[3]["error"] != "not_found" {
				t.Errorf("refusals %v / %v", lines[2], lines[3])
			}
		})
	}
}

func TestAccessLogOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts AccessLogOptions
		want []string
	}{
		{"defaults", AccessLogOptions{}.WithDefaults(), nil},
		{"bad mode", AccessLogOptions{Mode: "most", Sample: 1, Path: "stdout"}, []string{"mode:"}},
		{"bad sample", AccessLogOptions{Mode: "sampled", Sample: -1, Path: "stdout"}, []string{"sample:"}},
		{"no path", AccessLogOptions{Mode: "all", Sample: 1}, []string{"path:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := tc.opts.Validate()
			if len(errs) != len(tc.want) {
				t.Fatalf("problems %v, want %v", errs, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs.Error(), w) {
					t.Errorf("%q does not name %s", errs.Error(), w)
				}
			}
		})
	}
	if _, err := newAccessLog(AccessLogOptions{Mode: "all", Path: filepath.Join(t.TempDir(), "no", "dir", "x.log")}, nil); err == nil || !strings.Contains(err.Error(), "access_log.path") {
		t.Fatalf("unopenable file: %v", err)
	}
}
