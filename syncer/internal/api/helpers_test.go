package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/syncer/internal/api"
	"github.com/sluicegw/sluice/syncer/internal/apitest"
	"github.com/sluicegw/sluice/syncer/internal/nodes"
)

const token = "test-admin-token-0123456789"

type env struct {
	t     testing.TB
	url   string
	srv   *api.Server
	store *store.Store
	nats  *testutil.NATS
	nc    *nats.Conn
	nodes *nodes.Registry
}

func newEnv(t testing.TB) *env {
	t.Helper()
	r := testutil.StartRedis(t)
	n := testutil.StartNATS(t)
	return newEnvOn(t, r, n)
}

// newEnvOn starts an admin API over existing servers (several syncers can
// share one Redis and one NATS).
func newEnvOn(t testing.TB, r *testutil.Redis, n *testutil.NATS) *env {
	t.Helper()
	s := apitest.Start(t, r, n, token, 2*time.Second)
	return &env{t: t, url: s.URL, srv: s.API, store: s.Store, nats: n, nc: s.NC, nodes: s.Nodes}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %v: %s", r.status, err, r.body)
	}
	return m
}

// fields returns the sorted field paths of an error response's details.
func (r resp) fields(t testing.TB) []string {
	t.Helper()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Details []struct {
				Field string `json:"field"`
			} `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body: %v: %s", err, r.body)
	}
	var out []string
	for _, d := range e.Error.Details {
		out = append(out, d.Field)
	}
	sort.Strings(out)
	return out
}

func (r resp) code(t testing.TB) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// do sends a request with the admin token; extra headers as "Name: value".
func (e *env) do(method, path, body string, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// must sends a request and fails the test unless the status is want.
func (e *env) must(want int, method, path, body string, headers ...string) resp {
	e.t.Helper()
	r := e.do(method, path, body, headers...)
	if r.status != want {
		e.t.Fatalf("%s %s = %d, want %d: %s", method, path, r.status, want, bytes.TrimSpace(r.body))
	}
	return r
}

func apiJSON(id, listen string) string {
	return `{"id":"` + id + `","listen_path":"` + listen + `","upstream":{"targets":["http://127.0.0.1:1"]},"auth":{"mode":"api_key"}}`
}

func policyJSON(id string, apis ...string) string {
	var parts []string
	for _, a := range apis {
		parts = append(parts, `{"api":"`+a+`"}`)
	}
	return `{"id":"` + id + `","access":[` + strings.Join(parts, ",") + `],"rate_limit":{"rate":10,"per":"1s"}}`
}
