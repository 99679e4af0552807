package server

import (
	"bufio"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/gateway/internal/proxy"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// seen is one request as the upstream received it.
type seen struct {
	uri     string
	headers http.Header // every line of every header
}

// recordingUpstream keeps every request it receives under the value of its
// X-Case header, so parallel cases each find their own.
type recordingUpstream struct {
	*httptest.Server
	mu  sync.Mutex
	got map[string]seen
}

func newRecordingUpstream(t testing.TB, respond func(http.ResponseWriter)) *recordingUpstream {
	u := &recordingUpstream{got: map[string]seen{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.got[r.Header.Get("X-Case")] = seen{uri: r.RequestURI, headers: r.Header.Clone()}
		u.mu.Unlock()
		if respond != nil {
			respond(w)
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *recordingUpstream) request(tag string) (seen, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	s, ok := u.got[tag]
	return s, ok
}

// rawDo sends a raw HTTP/1.1 request (repeated header lines stay repeated)
// and returns the response with its error code read.
func rawDo(t *testing.T, addr, target string, lines []string) response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + target + " HTTP/1.1\r\nHost: gw.example\r\n" + strings.Join(lines, "\r\n")
	if len(lines) > 0 {
		req += "\r\n"
	}
	if _, err := conn.Write([]byte(req + "Connection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if i := strings.Index(out.body, `"code":"`); i >= 0 {
		rest := out.body[i+len(`"code":"`):]
		out.code = rest[:strings.IndexByte(rest, '"')]
	}
	return out
}

// gatewaySet are the headers the gateway or the test client set on every
// forwarded request; the credential tests compare the rest exactly.
var gatewaySet = []string{"X-Case", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip", "X-Request-Id"}

func clientHeaders(h http.Header) http.Header {
	out := h.Clone()
	for _, name := range gatewaySet {
		out.Del(name)
	}
	return out
}

func sameHeaders(a, b http.Header) bool {
	return maps.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}

// Every place an API reads a credential from is emptied before forwarding,
// whichever the request used; two different credentials of one kind are
// refused. Each case states the exact URI and client headers the upstream
// receives (nothing, when refused).
func TestCredentialsNeverReachUpstream(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	o := testutil.StartOIDC(t)
	up := newRecordingUpstream(t, nil)
	api := func(id string, a model.Auth) *model.API {
		m := keyless(id, "/"+id, up.URL)
		m.Auth = a
		return m
	}
	jwtAt := func(src model.TokenSource) *model.JWTAuth {
		j := jwtSettings(o)
		j.Token = src
		return j
	}
	ids := []string{"key", "keyh", "jwt", "jwth", "jwtc", "either", "open"}
	var access []model.AccessRight
	for _, id := range ids {
		access = append(access, model.AccessRight{API: id})
	}
	const other = "another-key-0123456789"
	c.put(
		api("key", model.Auth{Mode: model.AuthAPIKey, QueryParam: "api_key"}),
		api("keyh", model.Auth{Mode: model.AuthAPIKey, Header: "X-Key"}),
		api("jwt", model.Auth{Mode: model.AuthJWT, JWT: jwtAt(model.TokenSource{})}),
		api("jwth", model.Auth{Mode: model.AuthJWT, JWT: jwtAt(model.TokenSource{Header: "X-Token"})}),
		api("jwtc", model.Auth{Mode: model.AuthJWT, JWT: jwtAt(model.TokenSource{Cookie: "tok"})}),
		api("either", model.Auth{Mode: model.AuthAPIKey, QueryParam: "api_key", JWT: jwtAt(model.TokenSource{})}),
		keyless("open", "/open", up.URL),
		&model.Policy{ID: "read", Access: access},
		keyFor(secret, func(k *model.Key) { k.Policies = []string{"read"} }),
		keyFor(other, func(k *model.Key) { k.Policies = []string{"read"} }),
	)
	n := c.node()
	tok := o.Sign("ES256", tokenClaims(o, nil))
	tok2 := o.Sign("RS256", tokenClaims(o, map[string]any{"sub": "bob"}))
	claims := http.Header{"X-User-Id": {"alice"}, "X-User-Email": {"alice@example.com"}}
	none := http.Header{}
	cases := []struct {
		name    string
		target  string
		lines   []string
		status  int
		code    string
		uri     string      // what the upstream receives
		headers http.Header // client headers the upstream receives
	}{
		// An API key API reading the key header, bearer and ?api_key=.
		{"key header", "/key", []string{"X-API-Key: " + secret}, 200, "", "/key", none},
		{"key bearer", "/key", []string{"Authorization: Bearer " + secret}, 200, "", "/key", none},
		{"key query", "/key?a=1&api_key=" + secret + "&b=2", nil, 200, "", "/key?a=1&b=2", none},
		{"key in all three", "/key?api_key=" + secret, []string{"X-API-Key: " + secret, "Authorization: Bearer " + secret}, 200, "", "/key", none},
		{"key query twice", "/key?api_key=" + secret + "&x=1&api_key=" + secret, nil, 200, "", "/key?x=1", none},
		{"key query encoded name", "/key?api%5Fkey=" + secret + "&x=1", []string{"X-API-Key: " + secret}, 200, "", "/key?x=1", none},
		{"key query other case", "/key?API_KEY=" + secret, []string{"X-API-Key: " + secret}, 200, "", "/key", none},
		{"key query php forms", "/key?api.key=" + secret + "&api+key=" + secret + "&api_key[]=" + secret, nil, 200, "", "/key", none},
		{"key header twice", "/key", []string{"X-API-Key: " + secret, "x-api-key: " + secret}, 200, "", "/key", none},
		{"key with basic authorization", "/key", []string{"X-API-Key: " + secret, "Authorization: Basic dXNlcg=="}, 200, "", "/key",
			http.Header{"Authorization": {"Basic dXNlcg=="}}},
		{"key with basic and bearer lines", "/key", []string{"Authorization: Basic dXNlcg==", "Authorization: Bearer " + secret}, 200, "", "/key", none},
		{"key header and query differ", "/key?api_key=" + other, []string{"X-API-Key: " + secret}, 400, "ambiguous_credentials", "", nil},
		{"key query twice differ", "/key?api_key=" + secret + "&api_key=" + other, nil, 400, "ambiguous_credentials", "", nil},
		{"key query encoded differs", "/key?api%5Fkey=" + other, []string{"X-API-Key: " + secret}, 400, "ambiguous_credentials", "", nil},
		{"key header and bearer differ", "/key", []string{"X-API-Key: " + secret, "Authorization: Bearer " + other}, 400, "ambiguous_credentials", "", nil},
		{"key header lines differ", "/key", []string{"X-API-Key: " + secret, "X-API-Key: " + other}, 400, "ambiguous_credentials", "", nil},
		{"key bearer lines differ", "/key", []string{"Authorization: Bearer " + secret, "Authorization: Bearer " + other}, 400, "ambiguous_credentials", "", nil},
		{"key unknown", "/key", []string{"X-API-Key: unknown-key-0123456789"}, 401, "invalid_key", "", nil},
		// A custom key header and no query parameter: ?api_key= and
		// X-API-Key are not its places and pass as they are.
		{"custom header", "/keyh?api_key=zzz", []string{"X-Key: " + secret, "X-API-Key: zzz"}, 200, "", "/keyh?api_key=zzz",
			http.Header{"X-Api-Key": {"zzz"}}},
		{"custom header and bearer", "/keyh", []string{"X-Key: " + secret, "Authorization: Bearer " + secret}, 200, "", "/keyh", none},
		// JWT APIs: the token and its places go; the claims come.
		{"jwt bearer", "/jwt", []string{"Authorization: Bearer " + tok}, 200, "", "/jwt", claims},
		{"jwt bearer lines same", "/jwt", []string{"Authorization: Bearer " + tok, "Authorization: bearer " + tok}, 200, "", "/jwt", claims},
		{"jwt bearer lines differ", "/jwt", []string{"Authorization: Bearer " + tok, "Authorization: Bearer " + tok2}, 400, "ambiguous_credentials", "", nil},
		{"jwt forged claim", "/jwt", []string{"Authorization: Bearer " + tok, "X-User-Id: mallory"}, 200, "", "/jwt", claims},
		{"jwt claim named in connection", "/jwt", []string{"Authorization: Bearer " + tok, "Connection: X-User-Id, X-User-Email"}, 200, "", "/jwt", claims},
		{"jwt header source", "/jwth", []string{"X-Token: " + tok, "Authorization: Bearer " + tok2}, 200, "", "/jwth", claims},
		{"jwt header source lines differ", "/jwth", []string{"X-Token: " + tok, "X-Token: " + tok2}, 400, "ambiguous_credentials", "", nil},
		{"jwt cookie source", "/jwtc", []string{"Cookie: a=1; tok=" + tok + "; b=2"}, 200, "", "/jwtc",
			http.Header{"Cookie": {"a=1; b=2"}, "X-User-Id": {"alice"}, "X-User-Email": {"alice@example.com"}}},
		// An API that takes either: both kinds of places go.
		{"either key wins over jwt", "/either", []string{"X-API-Key: " + secret, "Authorization: Bearer " + tok}, 200, "", "/either", none},
		{"either query key wins over jwt", "/either?api_key=" + secret, []string{"Authorization: Bearer " + tok}, 200, "", "/either", none},
		{"either jwt", "/either?x=1", []string{"Authorization: Bearer " + tok}, 200, "", "/either?x=1", claims},
		{"either bearer key", "/either", []string{"Authorization: Bearer " + secret}, 200, "", "/either", none},
		{"either keys differ", "/either", []string{"X-API-Key: " + secret, "Authorization: Bearer " + other}, 400, "ambiguous_credentials", "", nil},
		{"either query keys differ", "/either?api_key=" + secret + "&API_KEY=" + other, nil, 400, "ambiguous_credentials", "", nil},
		// A keyless API reads no credential: nothing of the sort is removed.
		{"keyless", "/open?api_key=k", []string{"X-API-Key: k", "Authorization: Bearer k"}, 200, "", "/open?api_key=k",
			http.Header{"X-Api-Key": {"k"}, "Authorization": {"Bearer k"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := rawDo(t, n.srv.Addr(), tc.target, append([]string{"X-Case: " + tc.name}, tc.lines...))
			if r.status != tc.status || r.code != tc.code {
				t.Fatalf("got %d %q, want %d %q: %s", r.status, r.code, tc.status, tc.code, r.body)
			}
			got, ok := up.request(tc.name)
			if tc.status != 200 {
				if ok {
					t.Fatalf("a refused request reached the upstream: %+v", got)
				}
				return
			}
			if !ok {
				t.Fatal("the upstream received nothing")
			}
			if got.uri != tc.uri {
				t.Errorf("upstream uri %q, want %q", got.uri, tc.uri)
			}
			if h := clientHeaders(got.headers); !sameHeaders(h, tc.headers) {
				t.Errorf("upstream headers %v, want %v", h, tc.headers)
			}
		})
	}
}

// The headers that tell the upstream about the client: every X-Forwarded-For
// line joined, bounded; every Connection line honoured, bounded, never
// removing what the gateway sets; Forwarded and X-Real-IP per
// proxy.client_forwarding_headers.
func TestForwardingHeaders(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := newRecordingUpstream(t, func(w http.ResponseWriter) {
		w.Header().Add("Connection", "keep-alive")
		w.Header().Add("Connection", "X-Resp-Hop")
		w.Header().Set("X-Resp-Hop", "1")
		w.Header().Set("X-Resp-Kept", "1")
	})
	c.put(keyless("a", "/a", up.URL))
	strip := c.node(func(o *Options) { o.Forwarding.MaxForwardedFor = 64 })
	pass := c.node(func(o *Options) { o.Forwarding.ClientHeaders = proxy.PassClientHeaders })
	xff60 := strings.Repeat("10.0.0.1, ", 5) + "10.0.0.100" // 60 bytes
	cases := []struct {
		name   string
		node   *node
		lines  []string
		status int
		code   string
		want   http.Header // headers the upstream receives (nil: absent)
	}{
		{"xff lines joined", strip, []string{"X-Forwarded-For: 10.0.0.1", "X-Forwarded-For: 10.0.0.2, 10.0.0.3"}, 200, "",
			http.Header{"X-Forwarded-For": {"10.0.0.1, 10.0.0.2, 10.0.0.3, 127.0.0.1"}, "X-Real-Ip": {"127.0.0.1"}}},
		{"xff at the bound", strip, []string{"X-Forwarded-For: " + xff60[:28], "X-Forwarded-For: " + xff60[30:]}, 200, "",
			http.Header{"X-Forwarded-For": {xff60 + ", 127.0.0.1"}}},
		{"xff past the bound", strip, []string{"X-Forwarded-For: " + xff60, "X-Forwarded-For: 1.2.3.4"}, 431, "header_too_large", nil},
		{"second connection line", strip, []string{"Connection: keep-alive", "Connection: X-Two", "X-Two: 2", "X-Kept: k"}, 200, "",
			http.Header{"X-Two": nil, "X-Kept": {"k"}}},
		{"connection names the gateway's headers", strip, []string{"Connection: X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, Host, Content-Length",
			"X-Forwarded-For: 6.6.6.6"}, 200, "",
			http.Header{"X-Forwarded-For": {"127.0.0.1"}, "X-Real-Ip": {"127.0.0.1"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"gw.example"}}},
		{"too many connection options", strip, []string{"Connection: " + strings.Repeat("X-O, ", proxy.MaxConnectionOptions) + "X-Last"}, 400, "bad_request", nil},
		{"client headers stripped", strip, []string{"Forwarded: for=6.6.6.6", "X-Real-IP: 6.6.6.6", "X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example"}, 200, "",
			http.Header{"Forwarded": nil, "X-Real-Ip": {"127.0.0.1"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"gw.example"}}},
		{"client headers passed", pass, []string{"Forwarded: for=6.6.6.6", "X-Real-IP: 6.6.6.6"}, 200, "",
			http.Header{"Forwarded": {"for=6.6.6.6"}, "X-Real-Ip": {"6.6.6.6"}, "X-Forwarded-For": {"127.0.0.1"}}},
		{"passed, none sent", pass, nil, 200, "", http.Header{"Forwarded": nil, "X-Real-Ip": nil}},
		{"default bound", pass, []string{"X-Forwarded-For: " + strings.Repeat("1", proxy.DefaultMaxForwardedFor+1)}, 431, "header_too_large", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := rawDo(t, tc.node.srv.Addr(), "/a", append([]string{"X-Case: " + tc.name}, tc.lines...))
			if r.status != tc.status || r.code != tc.code {
				t.Fatalf("got %d %q, want %d %q: %s", r.status, r.code, tc.status, tc.code, r.body)
			}
			got, ok := up.request(tc.name)
			if tc.status != 200 {
				if ok {
					t.Fatalf("a refused request reached the upstream: %+v", got)
				}
				return
			}
			for name, want := range tc.want {
				if v := got.headers.Values(name); !slices.Equal(v, want) {
					t.Errorf("upstream %s = %q, want %q", name, v, want)
				}
			}
			if r.header.Get("X-Resp-Hop") != "" || r.header.Get("X-Resp-Kept") != "1" {
				t.Errorf("response headers %v", r.header)
			}
		})
	}
}

// An upstream response whose Connection lines name too many options is
// not passed on: 502.
func TestResponseConnectionBound(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := newRecordingUpstream(t, func(w http.ResponseWriter) {
		w.Header().Set("Connection", strings.Repeat("X-O, ", proxy.MaxConnectionOptions)+"X-Last")
	})
	c.put(keyless("a", "/a", up.URL))
	n := c.node()
	if r := rawDo(t, n.srv.Addr(), "/a", nil); r.status != 502 || r.code != "upstream_unavailable" {
		t.Fatalf("got %d %q: %s", r.status, r.code, r.body)
	}
}

// A request refused for its headers (ambiguous credentials, too many
// Connection options, an X-Forwarded-For past its bound) is refused before
// anything is counted: the one request the API allows an hour still
// passes afterwards.
func TestHeaderRefusalsDoNotConsume(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := newRecordingUpstream(t, nil)
	a := keyless("a", "/a", up.URL)
	a.Auth = model.Auth{Mode: model.AuthAPIKey}
	a.RateLimit = &model.Limit{Rate: 1, Per: model.Duration(time.Hour)}
	c.put(a, keyFor(secret, func(k *model.Key) { k.Access = []model.AccessRight{{API: "a"}} }))
	n := c.node(func(o *Options) { o.Forwarding.MaxForwardedFor = 64 })
	key := "X-API-Key: " + secret
	refused := []struct {
		lines  []string
		status int
		code   string
	}{
		{[]string{key, "Authorization: Bearer another-key-0123456789"}, 400, "ambiguous_credentials"},
		{[]string{key, "Connection: " + strings.Repeat("X-O, ", proxy.MaxConnectionOptions) + "X-Last"}, 400, "bad_request"},
		{[]string{key, "X-Forwarded-For: " + strings.Repeat("1", 65)}, 431, "header_too_large"},
	}
	for _, tc := range refused {
		if r := rawDo(t, n.srv.Addr(), "/a", tc.lines); r.status != tc.status || r.code != tc.code {
			t.Fatalf("got %d %q, want %d %q: %s", r.status, r.code, tc.status, tc.code, r.body)
		}
	}
	if r := rawDo(t, n.srv.Addr(), "/a", []string{key}); r.status != 200 {
		t.Fatalf("the allowed request after refusals: %d %s", r.status, r.body)
	}
	if r := rawDo(t, n.srv.Addr(), "/a", []string{key}); r.status != 429 {
		t.Fatalf("the limit does not hold: %d %s", r.status, r.body)
	}
}
