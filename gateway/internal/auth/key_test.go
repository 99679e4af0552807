package auth

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func request(uri string, headers ...string) *fasthttp.Request {
	req := &fasthttp.Request{}
	req.SetRequestURI(uri)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

// rawRequest reads a raw request as the traffic listener does, so
// repeated header lines stay separate.
func rawRequest(t testing.TB, uri string, lines ...string) *fasthttp.Request {
	t.Helper()
	head := "GET " + uri + " HTTP/1.1\r\nHost: a.example\r\n" + strings.Join(lines, "\r\n")
	if len(lines) > 0 {
		head += "\r\n"
	}
	req := &fasthttp.Request{}
	if err := req.Read(bufio.NewReader(strings.NewReader(head + "\r\n"))); err != nil {
		t.Fatal(err)
	}
	return req
}

func TestFindKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		req           *fasthttp.Request
		header, query string
		want          string
		loc           Location
		err           error
	}{
		{"bearer", request("/x", "Authorization", "Bearer abc"), "", "", "abc", InBearer, nil},
		{"bearer any case", request("/x", "Authorization", "bEaReR  abc "), "", "", "abc", InBearer, nil},
		{"basic ignored", request("/x", "Authorization", "Basic abc"), "", "", "", InNone, nil},
		{"empty bearer falls through", request("/x", "Authorization", "Bearer  ", "X-API-Key", "k2"), "", "", "k2", InHeader, nil},
		{"default header", request("/x", "X-API-Key", "k1"), "", "", "k1", InHeader, nil},
		{"custom header", request("/x", "X-Token", "k3", "X-API-Key", "no"), "X-Token", "", "k3", InHeader, nil},
		{"same key twice", request("/x", "Authorization", "Bearer k", "X-API-Key", "k"), "", "", "k", InBearer | InHeader, nil},
		{"bearer and header differ", request("/x", "Authorization", "Bearer b", "X-API-Key", "h"), "", "", "", InNone, ErrAmbiguous},
		{"query", request("/x?api_key=q1&a=b"), "", "api_key", "q1", InQuery, nil},
		{"query not configured", request("/x?api_key=q1"), "", "", "", InNone, nil},
		{"header and query same", request("/x?api_key=h", "X-API-Key", "h"), "", "api_key", "h", InHeader | InQuery, nil},
		{"header and query differ", request("/x?api_key=q1", "X-API-Key", "h"), "", "api_key", "", InNone, ErrAmbiguous},
		{"query twice, same", request("/x?api_key=q&api_key=q"), "", "api_key", "q", InQuery, nil},
		{"query twice, differ", request("/x?api_key=a&api_key=b"), "", "api_key", "", InNone, ErrAmbiguous},
		{"query encoded name", request("/x?api%5Fkey=q1"), "", "api_key", "q1", InQuery, nil},
		{"query other case", request("/x?API_KEY=q1"), "", "api_key", "q1", InQuery, nil},
		{"query php forms", request("/x?api.key=q&api+key=q&api_key[]=q&%20api_key=q"), "", "api_key", "q", InQuery, nil},
		{"query encoded value", request("/x?api_key=a%2Bb"), "", "api_key", "a+b", InQuery, nil},
		{"two header lines differ", rawRequest(t, "/x", "X-API-Key: a", "X-API-Key: b"), "", "", "", InNone, ErrAmbiguous},
		{"two bearer lines differ", rawRequest(t, "/x", "Authorization: Bearer a", "Authorization: Bearer b"), "", "", "", InNone, ErrAmbiguous},
		{"second bearer line", rawRequest(t, "/x", "Authorization: Basic x", "Authorization: Bearer b"), "", "", "b", InBearer, nil},
		{"none", request("/x"), "", "api_key", "", InNone, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, loc, err := FindKey(c.req, c.header, c.query, nil)
			if string(got) != c.want || loc != c.loc || !errors.Is(err, c.err) {
				t.Fatalf("FindKey = %q at %b, %v; want %q at %b, %v", got, loc, err, c.want, c.loc, c.err)
			}
			StripKeys(c.req, c.header, c.query)
			if k, loc, err := FindKey(c.req, c.header, c.query, nil); len(k) > 0 || loc != InNone || err != nil {
				t.Fatalf("after StripKeys: %q at %b, %v", k, loc, err)
			}
		})
	}
}

// FindKey with notKey skips the bearer values it names and still finds
// the key in the header or the query beside them.
func TestFindKeySkipsNotKeys(t *testing.T) {
	t.Parallel()
	jwtLike := func(v []byte) bool { return bytes.HasPrefix(v, []byte("eyJ")) }
	cases := []struct {
		name          string
		req           *fasthttp.Request
		header, query string
		want          string
		loc           Location
	}{
		{"jwt bearer alone", request("/x", "Authorization", "Bearer eyJx"), "", "", "", InNone},
		{"key bearer", request("/x", "Authorization", "Bearer abc"), "", "", "abc", InBearer},
		{"header beside jwt bearer", request("/x", "Authorization", "Bearer eyJx", "X-API-Key", "h"), "", "", "h", InHeader},
		{"custom header", request("/x", "X-Token", "k3"), "X-Token", "", "k3", InHeader},
		{"query beside jwt bearer", request("/x?api_key=q1", "Authorization", "Bearer eyJb"), "", "api_key", "q1", InQuery},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, loc, err := FindKey(c.req, c.header, c.query, jwtLike)
			if string(got) != c.want || loc != c.loc || err != nil {
				t.Fatalf("got %q at %b, %v; want %q at %b", got, loc, err, c.want, c.loc)
			}
		})
	}
}

// StripKeys leaves what is not a key place alone: other parameters (in
// order), other headers, Authorization with another scheme.
func TestStripKeysKeepsTheRest(t *testing.T) {
	t.Parallel()
	req := rawRequest(t, "/x?a=1&API_KEY=k&b=2&api%5fkey=k&c=3", "Authorization: Basic dXNlcg==", "X-Other: o", "X-Api-Key: k")
	StripKeys(req, "", "api_key")
	if got := string(req.RequestURI()); got != "/x?a=1&b=2&c=3" {
		t.Errorf("request uri %q", got)
	}
	if string(req.Header.Peek("Authorization")) != "Basic dXNlcg==" || string(req.Header.Peek("X-Other")) != "o" || req.Header.Peek("X-Api-Key") != nil {
		t.Errorf("headers %q", req.Header.String())
	}
}

func TestFindKeyAllocs(t *testing.T) {
	req := request("/x?api_key=0123456789abcdef0123&a=b", "Authorization", "Bearer 0123456789abcdef0123")
	var r fasthttp.Request
	if n := testing.AllocsPerRun(100, func() {
		req.CopyTo(&r)
		k, _, err := FindKey(&r, "", "api_key", nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = SumKey(k)
		StripKeys(&r, "", "api_key")
	}); n != 0 {
		t.Fatalf("find + hash + strip allocates %v times", n)
	}
}

func BenchmarkExtractAndHash(b *testing.B) {
	req := request("/x", "X-API-Key", "0123456789abcdef0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		k, _, _ := FindKey(req, "", "api_key", nil)
		_ = SumKey(k)
	}
}

// BenchmarkStripKeys: a key in its header and a query parameter to keep,
// with the API reading keys from the query too.
func BenchmarkStripKeys(b *testing.B) {
	req := request("/x?a=1&b=2", "X-API-Key", "0123456789abcdef0123456789abcdef")
	var r fasthttp.Request
	b.ReportAllocs()
	for b.Loop() {
		req.CopyTo(&r)
		StripKeys(&r, "", "api_key")
	}
}

func FuzzFindKey(f *testing.F) {
	f.Add("Bearer abc", "k", "/x?api_key=q")
	f.Add("bearer", "", "/?api_key=")
	f.Add("Bearer \x00\xff", "   ", "/x?api_key=%00&api_key=2")
	f.Add("", "0123456789abcdef", "/")
	f.Add("Bearer k", "k", "/x?API_KEY=k&api%5Fkey=k&api.key=k&api_key[]=k")
	f.Add("Bearer a", "b", "/x?api_key=c&%20api+key=d")
	f.Fuzz(func(t *testing.T, authz, header, uri string) {
		req := &fasthttp.Request{}
		req.SetRequestURI(uri)
		req.Header.Set("Authorization", authz)
		req.Header.Set("X-API-Key", header)
		k, loc, err := FindKey(req, "", "api_key", nil)
		if (loc == InNone) != (len(k) == 0) && err == nil {
			t.Fatalf("location %d with key %q", loc, k)
		}
		_ = SumKey(k)
		StripKeys(req, "", "api_key")
		if k, loc, err := FindKey(req, "", "api_key", nil); len(k) > 0 || loc != InNone || err != nil {
			t.Fatalf("after StripKeys: %q at %b, %v", k, loc, err)
		}
	})
}
