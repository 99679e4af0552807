package auth

import (
	"bytes"
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

func TestExtractKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		req           *fasthttp.Request
		header, query string
		want          string
		loc           Location
	}{
		{"bearer", request("/x", "Authorization", "Bearer abc"), "", "", "abc", InBearer},
		{"bearer any case", request("/x", "Authorization", "bEaReR  abc "), "", "", "abc", InBearer},
		{"basic ignored", request("/x", "Authorization", "Basic abc"), "", "", "", InNone},
		{"empty bearer falls through", request("/x", "Authorization", "Bearer  ", "X-API-Key", "k2"), "", "", "k2", InHeader},
		{"default header", request("/x", "X-API-Key", "k1"), "", "", "k1", InHeader},
		{"custom header", request("/x", "X-Token", "k3", "X-API-Key", "no"), "X-Token", "", "k3", InHeader},
		{"bearer wins", request("/x", "Authorization", "Bearer b", "X-API-Key", "h"), "", "", "b", InBearer},
		{"query", request("/x?api_key=q1&a=b"), "", "api_key", "q1", InQuery},
		{"query not configured", request("/x?api_key=q1"), "", "", "", InNone},
		{"header beats query", request("/x?api_key=q1", "X-API-Key", "h"), "", "api_key", "h", InHeader},
		{"none", request("/x"), "", "api_key", "", InNone},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, loc := ExtractKey(c.req, c.header, c.query)
			if string(got) != c.want || loc != c.loc {
				t.Fatalf("ExtractKey = %q at %d, want %q at %d", got, loc, c.want, c.loc)
			}
			StripKey(c.req, loc, c.header, c.query)
			if k, _ := ExtractKey(c.req, c.header, c.query); c.loc != InNone && bytes.Equal(k, []byte(c.want)) {
				t.Fatalf("key %q still present after StripKey", k)
			}
		})
	}
}

// ExtractHeaderKey never reads the bearer token: an API that accepts a key
// or a JWT looks at the key's own places first.
func TestExtractHeaderKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		req           *fasthttp.Request
		header, query string
		want          string
		loc           Location
	}{
		{"bearer ignored", request("/x", "Authorization", "Bearer abc"), "", "", "", InNone},
		{"header beside bearer", request("/x", "Authorization", "Bearer b", "X-API-Key", "h"), "", "", "h", InHeader},
		{"custom header", request("/x", "X-Token", "k3"), "X-Token", "", "k3", InHeader},
		{"query beside bearer", request("/x?api_key=q1", "Authorization", "Bearer b"), "", "api_key", "q1", InQuery},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, loc := ExtractHeaderKey(c.req, c.header, c.query)
			if string(got) != c.want || loc != c.loc {
				t.Fatalf("ExtractHeaderKey = %q at %d, want %q at %d", got, loc, c.want, c.loc)
			}
		})
	}
}

func TestExtractKeyAllocs(t *testing.T) {
	req := request("/x?api_key=0123456789abcdef", "Authorization", "Bearer 0123456789abcdef0123")
	if n := testing.AllocsPerRun(100, func() {
		k, _ := ExtractKey(req, "", "api_key")
		_ = SumKey(k)
	}); n != 0 {
		t.Fatalf("extract + hash allocates %v times", n)
	}
}

func BenchmarkExtractAndHash(b *testing.B) {
	req := request("/x", "X-API-Key", "0123456789abcdef0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		k, _ := ExtractKey(req, "", "api_key")
		_ = SumKey(k)
	}
}

func FuzzExtractKey(f *testing.F) {
	f.Add("Bearer abc", "k", "/x?api_key=q")
	f.Add("bearer", "", "/?api_key=")
	f.Add("Bearer \x00\xff", "   ", "/x?api_key=%00&api_key=2")
	f.Add("", "0123456789abcdef", "/")
	f.Fuzz(func(t *testing.T, authz, header, uri string) {
		req := &fasthttp.Request{}
		req.SetRequestURI(uri)
		req.Header.Set("Authorization", authz)
		req.Header.Set("X-API-Key", header)
		k, loc := ExtractKey(req, "", "api_key")
		if (loc == InNone) != (len(k) == 0) {
			t.Fatalf("location %d with key %q", loc, k)
		}
		_ = SumKey(k)
		StripKey(req, loc, "", "api_key")
	})
}
