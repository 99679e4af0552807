package api_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// kindCase is one kind of object the admin API serves under /v1: how to
// make one, and what to create first for it to refer to.
type kindCase struct {
	kind, path string
	setup      []string // POST path body, made before the exchange
	create     func(id string) string
	update     func(id string) string
	// refused is a create the kind's own checks refuse (400).
	refused string
	// inUse are the writes (METHOD path body) after which object b is in
	// use: its DELETE answers what the kind's rule says.
	inUse []string
	// sameBody: the answer of a write is the stored object (every kind but
	// keys, whose create answers the clear value too).
	sameBody bool
}

var kindCases = []kindCase{
	{kind: store.KindAPI, path: "/v1/apis", sameBody: true,
		create:  func(id string) string { return apiJSON(id, "/"+id+"/") },
		update:  func(id string) string { return apiJSON(id, "/"+id+"/v2/") },
		refused: apiJSON("z", "/b/v2"),
		inUse:   []string{"POST /v1/policies " + policyJSON("p1", "b"), "POST /v1/policies " + policyJSON("p2", "b", "c")}},
	{kind: store.KindPolicy, path: "/v1/policies", sameBody: true,
		setup:   []string{"/v1/apis " + apiJSON("base", "/base/")},
		create:  func(id string) string { return policyJSON(id, "base") },
		update:  func(id string) string { return `{"id":"` + id + `","access":[],"quota":{"max":5,"renewal":"1h"}}` },
		refused: policyJSON("z", "base", "ghost"),
		inUse:   []string{"POST /v1/keys " + `{"id":"k1","policies":["b"],"key":"kinds-test-key-k1-0123456789"}`}},
	{kind: store.KindOrg, path: "/v1/orgs", sameBody: true,
		create:  func(id string) string { return `{"id":"` + id + `","rate_limit":{"rate":100,"per":"1s"}}` },
		update:  func(id string) string { return `{"id":"` + id + `","quota":{"max":1000,"renewal":"24h"}}` },
		refused: `{"id":"z","rate_limit":{"rate":0,"per":"1s"}}`,
		inUse: []string{"POST /v1/apis " + apiJSON("base", "/base/"), "POST /v1/policies " + policyJSON("gold", "base"),
			"POST /v1/keys " + `{"id":"k1","policies":["gold"],"org":"b","key":"kinds-test-key-k1-0123456789"}`}},
	{kind: store.KindKey, path: "/v1/keys",
		setup: []string{"/v1/apis " + apiJSON("base", "/base/"), "/v1/policies " + policyJSON("gold", "base")},
		create: func(id string) string {
			return `{"id":"` + id + `","policies":["gold"],"key":"kinds-test-key-` + id + `-0123456789"}`
		},
		update:  func(id string) string { return `{"id":"` + id + `","policies":["gold"],"alias":"edited"}` },
		refused: `{"id":"z","policies":["ghost"],"org":"ghost","access":[{"api":"nope"}]}`},
}

// TestObjectKinds runs one exchange against every kind (create, conflict,
// bad body, get, missing, stale and absent If-Match, id mismatch, update,
// create by PUT, pages, delete) and compares what the API answered, its
// audit trail and its NATS announcements with testdata/kinds/<kind>.golden
// (UPDATE_GOLDEN=1 writes them): status codes, headers, JSON bodies and
// error messages are the contract every kind keeps.
func TestObjectKinds(t *testing.T) {
	t.Parallel()
	for _, kc := range kindCases {
		t.Run(kc.kind, func(t *testing.T) {
			t.Parallel()
			got := kindTranscript(t, kc)
			golden := filepath.Join("testdata", "kinds", kc.kind+".golden")
			if want := testutil.Golden(t, golden, got); got != want {
				t.Errorf("the exchange differs from %s:\n%s", golden, lineDiff(want, got))
			}
		})
	}
}

func kindTranscript(t *testing.T, kc kindCase) string {
	e := newEnv(t)
	for _, s := range kc.setup {
		path, body, _ := strings.Cut(s, " ")
		e.must(201, "POST", path, body)
	}
	setupVersion := int64(len(kc.setup))
	sub, err := e.nc.SubscribeSync(bus.Names{}.SyncWildcard())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	tr := &transcript{t: t, e: e}
	if kc.sameBody {
		tr.bodyPath = kc.path
	}
	one := kc.path + "/a"
	tr.call("POST", kc.path, kc.create("a"))
	etag := tr.last.header.Get("ETag")
	tr.call("POST", kc.path, kc.create("a"))
	tr.call("POST", kc.path, `{"id":"x","colour":"red"}`)
	tr.call("GET", one, "")
	tr.call("GET", kc.path+"/ghost", "")
	tr.call("PUT", one, kc.update("a"), `If-Match: "0000"`)
	tr.call("PUT", one, kc.update("other"))
	tr.call("PUT", one, kc.update("a"), "If-Match: "+etag)
	tr.call("PUT", kc.path+"/b", kc.update("b"))
	tr.call("PUT", kc.path+"/c", kc.update("c"), "If-Match: "+etag)
	tr.call("POST", kc.path, kc.create("c"))
	cursor := ""
	for range 4 {
		tr.call("GET", kc.path+"?limit=1&cursor="+cursor, "")
		if cursor = string(regexp.MustCompile(`"next_cursor":"([^"]*)"`).FindSubmatch(tr.last.body)[1]); cursor == "" {
			break
		}
	}
	tr.call("GET", kc.path+"?limit=0", "")
	tr.call("GET", kc.path+"?cursor=!", "")
	tr.call("POST", kc.path, kc.refused)
	for _, w := range kc.inUse {
		method, rest, _ := strings.Cut(w, " ")
		path, body, _ := strings.Cut(rest, " ")
		tr.call(method, path, body)
	}
	tr.call("DELETE", kc.path+"/b", "")
	tr.call("DELETE", one, "", `If-Match: "0000"`)
	tr.call("DELETE", one, "")
	tr.call("DELETE", one, "")
	tr.call("GET", one, "")
	tr.call("GET", "/v1/audit?kind="+kc.kind, "")
	// Every version written after the setup is announced, in order.
	for v := int64(0); v < tr.version; {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("announcements after version %d (of %d): %v", v, tr.version, err)
		}
		sm, err := bus.DecodeSyncMessage(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if v = sm.Version; v > setupVersion {
			tr.line("~ %s %s", m.Subject, m.Data)
		}
	}
	return tr.normalize()
}

// transcript records requests and answers, one line each.
type transcript struct {
	t        *testing.T
	e        *env
	b        strings.Builder
	last     resp
	bodyPath string // whose answers are the stored object ("": none)
	version  int64  // the last Sluice-Config-Version answered
}

func (tr *transcript) line(format string, args ...any) {
	fmt.Fprintf(&tr.b, format+"\n", args...)
}

func (tr *transcript) call(method, path, body string, headers ...string) {
	tr.t.Helper()
	r := tr.e.do(method, path, body, headers...)
	tr.last = r
	tr.line("> %s %s %s %s", method, path, strings.Join(headers, " "), body)
	var hs []string
	for _, h := range []string{"Location", "ETag", "Sluice-Config-Version", "Content-Type", "Cache-Control"} {
		if v := r.header.Get(h); v != "" {
			hs = append(hs, h+": "+v)
		}
	}
	tr.line("< %d %s", r.status, strings.Join(hs, " | "))
	if v, err := strconv.ParseInt(r.header.Get("Sluice-Config-Version"), 10, 64); err == nil {
		tr.version = v
	}
	if len(r.body) > 0 {
		tr.line("< %s", bytes.TrimSpace(r.body))
	}
	// A write's ETag is the stored object's, and GET answers the stored
	// bytes: for kinds whose answers are the stored object, the ETag is
	// the body's.
	if etag := r.header.Get("ETag"); etag != "" && tr.bodyPath != "" && strings.HasPrefix(path, tr.bodyPath) && etag != store.ETag(r.body) {
		tr.t.Errorf("%s %s: ETag %s is not the answered body's (%s)", method, path, etag, store.ETag(r.body))
	}
}

var (
	etagRE      = regexp.MustCompile(`"[0-9a-f]{40}"|\\"[0-9a-f]{40}\\"`)
	auditIDRE   = regexp.MustCompile(`"id":"[0-9]+-[0-9]+"`)
	timeRE      = regexp.MustCompile(`"(time|created_at)":"[^"]+"`)
	normalizers = []struct {
		re   *regexp.Regexp
		with string
	}{{auditIDRE, `"id":"<audit id>"`}, {timeRE, `"$1":"<time>"`}}
)

// normalize names the ETags E1, E2, ... in order of appearance (keys'
// depend on their creation time) and blanks times and audit ids.
func (tr *transcript) normalize() string {
	s := tr.b.String()
	for _, n := range normalizers {
		s = n.re.ReplaceAllString(s, n.with)
	}
	names := map[string]string{}
	return etagRE.ReplaceAllStringFunc(s, func(m string) string {
		hex := strings.Trim(m, `"\`)
		if names[hex] == "" {
			names[hex] = fmt.Sprintf("E%d", len(names)+1)
		}
		return strings.Replace(m, hex, names[hex], 1)
	})
}

// lineDiff lists the lines of got that differ from want, by number.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			out = append(out, fmt.Sprintf("line %d:\n  want %s\n  got  %s", i+1, wl, gl))
		}
	}
	return strings.Join(out, "\n")
}
