package server

import (
	"strings"
	"testing"

	"github.com/sluicegw/sluice/pkg/model"
)

// TestRequestID: a sane client id travels to the upstream, back to the
// client and into the usage event; anything else (too long, a space, a
// control or non-ASCII byte, absent) is replaced by an id the node makes,
// unique per request. The header name is configurable.
func TestRequestID(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := echoUpstream(t).URL
	c.put(keyless("open", "/open", up))
	def := c.node()
	custom := c.node(func(o *Options) { o.RequestIDHeader = "X-Trace-Token" })
	long := strings.Repeat("a", MaxRequestIDLength)
	tests := []struct {
		name   string
		n      *node
		header string
		value  string
		keep   bool
	}{
		{"sane", def, "X-Request-ID", "4f1c2b9e-8c1d-4a57", true},
		{"longest", def, "X-Request-ID", long, true},
		{"too long", def, "X-Request-ID", long + "a", false},
		{"space", def, "X-Request-ID", "a b", false},
		{"non-ascii", def, "X-Request-ID", "caf\xc3\xa9", false},
		{"absent", def, "", "", false},
		{"custom header", custom, "X-Trace-Token", "trace-77", true},
		{"default header ignored when renamed", custom, "X-Request-ID", "ignored-1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var hdr []string
			if tc.header != "" {
				hdr = []string{tc.header, tc.value}
			}
			name := tc.n.srv.rid.header
			r1 := do(t, "GET", tc.n.url+"/open/x", hdr...)
			r2 := do(t, "GET", tc.n.url+"/open/x", hdr...)
			if r1.status != 200 {
				t.Fatalf("status %d: %s", r1.status, r1.body)
			}
			got := r1.header.Get(name)
			if up := r1.echo.Headers[canonical(name)]; up != got {
				t.Fatalf("upstream got %q, client got %q", up, got)
			}
			if tc.keep {
				if got != tc.value {
					t.Fatalf("id %q, want the client's %q", got, tc.value)
				}
				return
			}
			if got == tc.value || !ValidRequestID([]byte(got)) {
				t.Fatalf("id %q not replaced by a valid one", got)
			}
			if again := r2.header.Get(name); again == got {
				t.Fatalf("two requests got the same made id %q", got)
			}
			found := false
			for _, e := range tc.n.events.all() {
				found = found || e.RequestID == got
			}
			if !found {
				t.Fatalf("no usage event carries request id %q", got)
			}
		})
	}
}

// TestRequestIDOnRefusal: a refused request answers with its id too.
func TestRequestIDOnRefusal(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	api := keyless("keyed", "/keyed", echoUpstream(t).URL)
	api.Auth.Mode = model.AuthAPIKey
	c.put(api)
	n := c.node()
	r := do(t, "GET", n.url+"/keyed/x", "X-Request-ID", "refused-1")
	if r.status != 401 || r.header.Get("X-Request-ID") != "refused-1" {
		t.Fatalf("status %d, id %q", r.status, r.header.Get("X-Request-ID"))
	}
}

func canonical(h string) string {
	b := []byte(strings.ToLower(h))
	up := true
	for i, c := range b {
		if up && c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
		up = c == '-'
	}
	return string(b)
}

func FuzzValidRequestID(f *testing.F) {
	for _, s := range []string{"abc", "", "a b", strings.Repeat("x", 129), "\x7f", "é"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		if !ValidRequestID(v) {
			return
		}
		if len(v) > MaxRequestIDLength || strings.ContainsAny(string(v), " \r\n\t\x00") {
			t.Fatalf("accepted %q", v)
		}
	})
}
