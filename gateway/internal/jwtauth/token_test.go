package jwtauth

import (
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

func hsConfig(src model.TokenSource) *model.JWTAuth {
	return &model.JWTAuth{
		Token: src, Algorithms: []string{"HS256"},
		Keys:          model.JWTKeys{Secret: base64.StdEncoding.EncodeToString(testSecret)},
		Policies:      model.JWTPolicies{Default: []string{"basic"}},
		ForwardClaims: map[string]string{"sub": "X-User-Id"},
	}
}

func TestTokenExtraction(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, newClock(), Options{})
	bearer := mustVerifier(t, p, hsConfig(model.TokenSource{}))
	header := mustVerifier(t, p, hsConfig(model.TokenSource{Header: "X-Token"}))
	cookie := mustVerifier(t, p, hsConfig(model.TokenSource{Cookie: "session"}))
	for _, tc := range []struct {
		name    string
		v       *Verifier
		headers [][2]string
		want    string
	}{
		{"bearer", bearer, [][2]string{{"Authorization", "Bearer abc.def.ghi"}}, "abc.def.ghi"},
		{"bearer any case, spaces", bearer, [][2]string{{"Authorization", "bEaReR   abc.def.ghi "}}, "abc.def.ghi"},
		{"basic is not a token", bearer, [][2]string{{"Authorization", "Basic dXNlcjpwdw=="}}, ""},
		{"bare authorization is not a token", bearer, [][2]string{{"Authorization", "abc.def.ghi"}}, ""},
		{"bearer without token", bearer, [][2]string{{"Authorization", "Bearer "}}, ""},
		{"missing", bearer, nil, ""},
		{"named header", header, [][2]string{{"X-Token", "abc.def.ghi"}}, "abc.def.ghi"},
		{"named header with bearer", header, [][2]string{{"X-Token", "Bearer abc.def.ghi"}}, "abc.def.ghi"},
		{"named header ignores authorization", header, [][2]string{{"Authorization", "Bearer abc.def.ghi"}}, ""},
		{"cookie", cookie, [][2]string{{"Cookie", "a=1; session=abc.def.ghi; b=2"}}, "abc.def.ghi"},
		{"cookie missing", cookie, [][2]string{{"Cookie", "a=1"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h fasthttp.RequestHeader
			for _, kv := range tc.headers {
				h.Set(kv[0], kv[1])
			}
			if got := string(tc.v.Token(&h)); got != tc.want {
				t.Fatalf("token = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLooksLikeJWT(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    string
		want bool
	}{
		{"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", true},
		{"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.", true},
		{"sk_live_0123456789abcdef", false},
		{"eyJ.abc", false},
		{"eyJ.a.b.c", false},
		{"eyJ a.b.c", false},
		{"abc.def.ghi", false},
		{"", false},
	} {
		if got := LooksLikeJWT([]byte(tc.v)); got != tc.want {
			t.Errorf("LooksLikeJWT(%q) = %v", tc.v, got)
		}
	}
}

func TestStripAndSetForwarded(t *testing.T) {
	t.Parallel()
	clk := newClock()
	p := newTestProvider(t, clk, Options{})
	v := mustVerifier(t, p, hsConfig(model.TokenSource{}))
	var h fasthttp.RequestHeader
	h.Set("X-User-Id", "admin") // forged by the caller
	v.StripForwarded(&h)
	if h.Peek("X-User-Id") != nil {
		t.Fatal("incoming X-User-Id kept")
	}
	r, err := verify(v, testutil.SignHMAC(t, "HS256", testSecret, nil, map[string]any{"sub": "alice", "exp": clk.unix(time.Hour)}))
	if err != nil {
		t.Fatal(err)
	}
	v.SetForwarded(&h, r)
	if got := string(h.Peek("X-User-Id")); got != "alice" {
		t.Fatalf("X-User-Id = %q", got)
	}
}

// Not parallel: testing.AllocsPerRun refuses parallel tests.
func TestCachedPathDoesNotAllocate(t *testing.T) {
	clk := newClock()
	p := newTestProvider(t, clk, Options{})
	v := mustVerifier(t, p, hsConfig(model.TokenSource{}))
	tok := testutil.SignHMAC(t, "HS256", testSecret, nil, map[string]any{"sub": "alice", "exp": clk.unix(time.Hour)})
	var h fasthttp.RequestHeader
	h.Set("Authorization", "Bearer "+tok)
	ctx := context.Background()
	if _, err := v.Verify(ctx, v.Token(&h)); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := v.Verify(ctx, v.Token(&h)); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("token extraction and cached verification allocate %v times per request", allocs)
	}
}
