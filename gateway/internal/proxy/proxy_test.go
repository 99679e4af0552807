package proxy

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/internal/reqpath"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

func upstream(t *testing.T, h http.HandlerFunc) *httptest.Server {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func mustPath(t *testing.T, raw string) *reqpath.Path {
	t.Helper()
	p := new(reqpath.Path)
	if err := p.Parse([]byte(raw)); err != nil {
		t.Fatalf("path %q: %v", raw, err)
	}
	return p
}

func newReq(uri string) *fasthttp.Request {
	req := &fasthttp.Request{}
	req.SetRequestURI(uri)
	return req
}

func TestHopByHopAndForwarded(t *testing.T) {
	t.Parallel()
	seen := make(chan http.Header, 1)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		h.Set("Path", r.URL.RequestURI())
		seen <- h
		w.Header().Set("Connection", "X-Resp-Hop")
		w.Header().Set("X-Resp-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "yes")
		_, _ = w.Write([]byte("ok"))
	})
	u, err := New(model.Upstream{Targets: []string{up.URL + "/base/"}}, Options{ReadTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	req := newReq("http://client.example/orders/1?x=1")
	req.Header.Set("Connection", "X-Hop, keep-alive")
	req.Header.Set("X-Hop", "secret")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Authorization", "Basic x")
	req.Header.Set("TE", "trailers")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("X-Forwarded-For", "10.0.0.1")
	req.Header.Set("X-End", "kept")
	if err := StripRequest(req); err != nil {
		t.Fatal(err)
	}
	if err := SetForwarded(req, &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5555}, false, Forwarding{}); err != nil {
		t.Fatal(err)
	}
	resp := &fasthttp.Response{}
	if err := u.Do(req, resp, mustPath(t, "/1"), 0); err != nil {
		t.Fatal(err)
	}
	if err := StripResponse(resp); err != nil {
		t.Fatal(err)
	}
	h := <-seen
	for _, name := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization", "Te", "Upgrade"} {
		if v := h.Get(name); v != "" {
			t.Errorf("upstream got hop-by-hop %s: %q", name, v)
		}
	}
	want := map[string]string{
		"X-Forwarded-For": "10.0.0.1, 192.0.2.7", "X-Forwarded-Proto": "http",
		"X-Forwarded-Host": "client.example", "X-End": "kept", "Path": "/base/1?x=1",
		"Host": strings.TrimPrefix(up.URL, "http://"),
	}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("upstream %s = %q, want %q", k, h.Get(k), v)
		}
	}
	for _, name := range []string{"X-Resp-Hop", "Keep-Alive", "Connection"} {
		if v := resp.Header.Peek(name); len(v) > 0 {
			t.Errorf("response kept hop-by-hop %s: %q", name, v)
		}
	}
	if string(resp.Header.Peek("X-Kept")) != "yes" || string(resp.Body()) != "ok" {
		t.Errorf("response lost end-to-end data: %q %q", resp.Header.Peek("X-Kept"), resp.Body())
	}
}

func deadTarget(t *testing.T) string {
	return "http://127.0.0.1:" + itoa(testutil.FreePort(t))
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestRoundRobinSkipsDeadTarget(t *testing.T) {
	t.Parallel()
	hits := make(chan string, 100)
	a := upstream(t, func(w http.ResponseWriter, r *http.Request) { hits <- "a" })
	b := upstream(t, func(w http.ResponseWriter, r *http.Request) { hits <- "b" })
	u, err := New(model.Upstream{Targets: []string{a.URL, deadTarget(t), b.URL}}, Options{ConnectTimeout: time.Second, ReadTimeout: time.Second, DownFor: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for i := 0; i < 20; i++ {
		resp := &fasthttp.Response{}
		if err := u.Do(newReq("http://x/"), resp, mustPath(t, "/"), 0); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		count[<-hits]++
	}
	if count["a"] < 5 || count["b"] < 5 || count["a"]+count["b"] != 20 {
		t.Fatalf("distribution %v", count)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	cases := []struct {
		name   string
		target string
		want   error
	}{
		{"refused", deadTarget(t), ErrUpstreamDown},
		{"slow", slow.URL, ErrUpstreamTimeout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			u, err := New(model.Upstream{Targets: []string{c.target}, ReadTimeout: model.Duration(100 * time.Millisecond)}, Options{ConnectTimeout: time.Second, ReadTimeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			err = u.Do(newReq("http://x/"), &fasthttp.Response{}, mustPath(t, "/"), 0)
			if !errors.Is(err, c.want) {
				t.Fatalf("Do = %v, want %v", err, c.want)
			}
		})
	}
}

func TestSameAndNew(t *testing.T) {
	t.Parallel()
	cfg := model.Upstream{Targets: []string{"http://127.0.0.1:1"}}
	u, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !u.Same(cfg, Options{}) {
		t.Fatal("same config not Same")
	}
	cfg2 := cfg
	cfg2.ReadTimeout = model.Duration(time.Second)
	if u.Same(cfg2, Options{}) || u.Same(model.Upstream{Targets: []string{"http://127.0.0.1:2"}}, Options{}) {
		t.Fatal("changed config Same")
	}
	for _, bad := range []string{"ftp://x", "nohost", "", "http://h/a%2fb", "http://h/../x", "http://h/a%00"} {
		if _, err := New(model.Upstream{Targets: []string{bad}}, Options{}); err == nil {
			t.Errorf("target %q accepted", bad)
		}
	}
}

// The path reaches the target exactly as reqpath escaped it, under the
// target URL's path in normal form, stripped of the listen path when asked.
func TestExactPath(t *testing.T) {
	t.Parallel()
	seen := make(chan string, 1)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) { seen <- r.RequestURI })
	cases := []struct {
		base, raw string
		from      int
		want      string
	}{
		{"", "/a/%7Bx%7D/caf%c3%a9/100%25?q=%2e%2e", 0, "/a/%7Bx%7D/caf%C3%A9/100%25?q=%2e%2e"},
		{"/based/", "/api/x%3b/y", 4, "/based/x%3B/y"},
		{"/based", "/api", 4, "/based/"},
		{"/b%61sed/./x/", "/api/a/../b", 0, "/based/x/api/b"},
	}
	for _, c := range cases {
		u, err := New(model.Upstream{Targets: []string{up.URL + c.base}}, Options{ReadTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		raw, query, _ := strings.Cut(c.raw, "?")
		req := newReq("http://client.example/")
		req.URI().SetQueryString(query)
		if err := u.Do(req, &fasthttp.Response{}, mustPath(t, raw), c.from); err != nil {
			t.Fatal(err)
		}
		if got := <-seen; got != c.want {
			t.Errorf("base %q path %q from %d: upstream got %q, want %q", c.base, c.raw, c.from, got, c.want)
		}
	}
}
