package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
)

// targetUpstream is an upstream answering every request with its
// request-target exactly as written on the request line, no parser in
// between. It returns the upstream's URL.
func targetUpstream(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			_ = c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			go answerTarget(c)
		}
	}()
	return "http://" + ln.Addr().String()
}

func answerTarget(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		parts := strings.SplitN(strings.TrimRight(line, "\r\n"), " ", 3)
		if len(parts) != 3 {
			return
		}
		var n int64
		for {
			h, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if h = strings.TrimRight(h, "\r\n"); h == "" {
				break
			}
			if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(k, "Content-Length") {
				n, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
		if _, err := io.CopyN(io.Discard, br, n); err != nil {
			return
		}
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(parts[1]), parts[1]); err != nil {
			return
		}
	}
}

// rawRequest sends "GET <target> HTTP/1.1" with the given extra header
// lines, byte for byte, and returns the status, the body and the error
// code of a JSON error body.
func rawRequest(t *testing.T, addr, method, target string, headers ...string) (int, string, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := method + " " + target + " HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	if _, err := conn.Write([]byte(req + "\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %q: read response: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if resp.Header.Get("Content-Type") == "application/json" {
		_ = json.Unmarshal(b, &e)
	}
	return resp.StatusCode, string(b), e.Error.Code
}

// TestPathNormalisation sends each encoding on the wire and checks the
// status and, when forwarded, the exact request-target the upstream read:
// the path the gateway judged, in the one normal form of docs/edge.md.
func TestPathNormalisation(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := targetUpstream(t)
	demo := keyless("demo", "/demo", up)
	demo.Auth.Mode = model.AuthAPIKey
	rawkey := keyless("rawkey", "/rawkey", up)
	rawkey.Auth.Mode = model.AuthAPIKey
	based := keyless("based", "/based", up+"/based")
	based.StripListenPath = true
	strip := keyless("strip", "/strip", up)
	strip.StripListenPath = true
	c.put(demo, rawkey, based, strip, keyless("raw", "/raw", up), keyless("plain", "/plain", up),
		keyFor(secret, func(k *model.Key) {
			k.Access = []model.AccessRight{{API: "demo", Paths: []string{"/public/*"}}}
		}))
	n := c.node()
	key := "X-API-Key: " + secret
	cases := []struct {
		name, target string
		key          bool
		method       string // GET when empty
		status       int
		code         string
		upstream     string // the request-target the upstream read (200 only)
	}{
		// Keyed API, access right /public/* only.
		{"demo plain", "/demo/public/x", true, "", 200, "", "/demo/public/x"},
		{"demo double-encoded dots (issue 8)", "/demo/public/%252e%252e/admin", true, "", 400, "bad_path", ""},
		{"demo encoded dots judged resolved", "/demo/public/%2e%2e/admin", true, "", 403, "forbidden", ""},
		{"demo mixed-case encoded dots", "/demo/public/%2E%2e/admin", true, "", 403, "forbidden", ""},
		{"demo half-encoded dots", "/demo/public/.%2e/admin", true, "", 403, "forbidden", ""},
		{"demo literal dots", "/demo/public/../admin", true, "", 403, "forbidden", ""},
		{"demo dots stay inside rule", "/demo/public/a/../b", true, "", 200, "", "/demo/public/b"},
		{"demo dot segment", "/demo/public/%2e/x", true, "", 200, "", "/demo/public/x"},
		{"demo encoded slash", "/demo/public/..%2fadmin", true, "", 400, "bad_path", ""},
		{"demo encoded slash upper", "/demo/public/..%2Fadmin", true, "", 400, "bad_path", ""},
		{"demo double-encoded slash", "/demo/public/..%252fadmin", true, "", 400, "bad_path", ""},
		{"demo backslash", "/demo/public/..\\admin", true, "", 400, "bad_path", ""},
		{"demo encoded backslash", "/demo/public/..%5cadmin", true, "", 400, "bad_path", ""},
		{"demo double-encoded backslash", "/demo/public/..%255cadmin", true, "", 400, "bad_path", ""},
		{"demo mixed double encoding", "/demo/public/%25%32%65%25%32%65/admin", true, "", 400, "bad_path", ""},
		{"demo percent of an escape", "/demo/public/%%32%65%%32%65/admin", true, "", 400, "bad_path", ""},
		{"demo triple encoding", "/demo/public/%25252e%25252e/admin", true, "", 400, "bad_path", ""},
		{"demo iis unicode escape", "/demo/public/%u002e%u002e/admin", true, "", 400, "bad_path", ""},
		{"demo double-encoded iis escape", "/demo/public/%25u002e%25u002e/admin", true, "", 400, "bad_path", ""},
		{"demo overlong dots", "/demo/public/%c0%ae%c0%ae/admin", true, "", 400, "bad_path", ""},
		{"demo overlong slash", "/demo/public/..%c0%afadmin", true, "", 400, "bad_path", ""},
		{"demo three-byte overlong dot", "/demo/public/%e0%80%ae%e0%80%ae/admin", true, "", 400, "bad_path", ""},
		{"demo null byte", "/demo/public/x%00.json", true, "", 400, "bad_path", ""},
		{"demo null byte before dots", "/demo/public/%00/../../admin", true, "", 400, "bad_path", ""},
		{"demo tab", "/demo/public/x%09", true, "", 400, "bad_path", ""},
		{"demo dotdot semicolon", "/demo/public/..;/admin", true, "", 400, "bad_path", ""},
		{"demo encoded dotdot semicolon", "/demo/public/%2e%2e;/admin", true, "", 400, "bad_path", ""},
		{"demo dotdot encoded semicolon", "/demo/public/..%3B/admin", true, "", 400, "bad_path", ""},
		{"demo path parameter", "/demo/public/x;jsessionid=1", true, "", 400, "bad_path", ""},
		{"demo encoded semicolon is data", "/demo/public/a%3bb", true, "", 200, "", "/demo/public/a%3Bb"},
		{"demo trailing dot", "/demo/public/admin.", true, "", 400, "bad_path", ""},
		{"demo trailing encoded space", "/demo/public/admin%20", true, "", 400, "bad_path", ""},
		{"demo unreserved decoded", "/demo/public/%61%7e%2D", true, "", 200, "", "/demo/public/a~-"},
		{"demo escape case", "/demo/public/caf%c3%a9%3a", true, "", 200, "", "/demo/public/caf%C3%A9%3A"},
		{"demo raw UTF-8 encoded", "/demo/public/caf\xc3\xa9", true, "", 200, "", "/demo/public/caf%C3%A9"},
		{"demo raw overlong", "/demo/public/\xc0\xae\xc0\xae", true, "", 400, "bad_path", ""},
		{"demo merged slashes", "/demo//public///x", true, "", 200, "", "/demo/public/x"},
		{"demo percent kept", "/demo/public/100%25", true, "", 200, "", "/demo/public/100%25"},
		{"demo query untouched", "/demo/public/x?next=/../%2e%2e/admin", true, "", 200, "", "/demo/public/x?next=/../%2e%2e/admin"},
		{"demo absolute form", "http://gw.example/demo/public/%2e%2e/admin", true, "", 403, "forbidden", ""},
		{"demo absolute form plain", "http://gw.example/demo/public/y", true, "", 200, "", "/demo/public/y"},
		{"demo out and back in", "/demo/%2e%2e/demo/public/x", true, "", 400, "bad_path", ""},
		{"demo leading double slash", "//demo/public/x", true, "", 200, "", "/demo/public/x"},
		{"demo fragment", "/demo/public/x#/../../admin", true, "", 400, "bad_path", ""},
		{"demo raw control byte", "/demo/public/x\x01", true, "", 400, "bad_request", ""},
		{"asterisk form", "*", false, "OPTIONS", 400, "bad_path", ""},

		// Keyless API sharing its upstream with a keyed one.
		{"raw double-encoded dots (issue 8)", "/raw/%252e%252e/rawkey/secret", false, "", 400, "bad_path", ""},
		{"raw encoded dots into keyed API", "/raw/%2e%2e/rawkey/secret", false, "", 400, "bad_path", ""},
		{"raw literal dots into keyed API", "/raw/../rawkey/secret", false, "", 400, "bad_path", ""},
		{"raw encoded slash into keyed API", "/raw/%2e%2e%2frawkey/secret", false, "", 400, "bad_path", ""},
		{"raw dots inside", "/raw/x/%2e%2e/y", false, "", 200, "", "/raw/y"},
		{"keyed API still needs its key", "/rawkey/secret", false, "", 401, "missing_key", ""},

		// strip_listen_path with a target base path.
		{"based double-encoded dots (issue 8)", "/based/%252e%252e/%252e%252e/internal/admin", false, "", 400, "bad_path", ""},
		{"based encoded dots above the root", "/based/%2e%2e/%2e%2e/internal/admin", false, "", 400, "bad_path", ""},
		{"based encoded backslash dots", "/based/..%5c..%5cinternal/admin", false, "", 400, "bad_path", ""},
		{"based dots inside", "/based/x/%2e%2e/y", false, "", 200, "", "/based/y"},
		{"based listen path alone", "/based", false, "", 200, "", "/based/"},
		{"based escapes kept", "/based/%7bid%7d/a%20b", false, "", 200, "", "/based/%7Bid%7D/a%20b"},

		// strip_listen_path without a base; no strip.
		{"strip dot segment", "/strip/a/%2e/b/", false, "", 200, "", "/a/b/"},
		{"strip above the root", "/strip/../../x", false, "", 400, "bad_path", ""},
		{"strip encoded slashes", "/strip/a%2F..%2F..%2Fb", false, "", 400, "bad_path", ""},
		{"plain encoded space", "/plain/a%20b", false, "", 200, "", "/plain/a%20b"},
		{"plain reserved kept literal", "/plain/a:b@c!$&'()*+,=", false, "", 200, "", "/plain/a:b@c!$&'()*+,="},
		{"plain unsafe literals encoded", "/plain/{x}|^`", false, "", 200, "", "/plain/%7Bx%7D%7C%5E%60"},
		{"plain invalid escape", "/plain/a%zz", false, "", 400, "bad_path", ""},
		{"plain truncated escape", "/plain/a%4", false, "", 400, "bad_path", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var h []string
			if tc.key {
				h = append(h, key)
			}
			method := tc.method
			if method == "" {
				method = "GET"
			}
			status, body, code := rawRequest(t, n.srv.Addr(), method, tc.target, h...)
			if status != tc.status || code != tc.code {
				t.Fatalf("GET %q: %d %q, want %d %q: %s", tc.target, status, code, tc.status, tc.code, body)
			}
			if status == 200 && body != tc.upstream {
				t.Fatalf("GET %q: upstream read %q, want %q", tc.target, body, tc.upstream)
			}
		})
	}
}

// Endpoint limits and usage events see the normalised path: an encoded or
// dotted spelling of a limited endpoint counts against it.
func TestPathEndpointLimit(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := targetUpstream(t)
	a := keyless("lim", "/lim", up)
	a.Endpoints = []model.Endpoint{{Path: "/slow", RateLimit: &model.Limit{Rate: 1, Per: model.Duration(time.Hour)}}}
	c.put(a)
	n := c.node()
	if status, body, _ := rawRequest(t, n.srv.Addr(), "GET", "/lim/slow"); status != 200 || body != "/lim/slow" {
		t.Fatalf("first: %d %q", status, body)
	}
	for _, target := range []string{"/lim/x/../slow", "/lim/%73low", "/lim//slow", "/lim/./slow/", "/lim/x/%2e%2e/slow"} {
		if status, body, code := rawRequest(t, n.srv.Addr(), "GET", target); status != 429 || code != "rate_limited" {
			t.Errorf("%q passed the endpoint limit: %d %s", target, status, body)
		}
	}
	ev := n.events.all()
	if len(ev) == 0 || ev[len(ev)-1].Path != "/lim/slow" || ev[len(ev)-1].Endpoint != "/slow" {
		t.Fatalf("usage event of a normalised path: %+v", ev)
	}
}
