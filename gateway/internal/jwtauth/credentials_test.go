package jwtauth

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/pkg/model"
)

// TokenOnce reads every line of the token header and refuses two different
// tokens; StripToken empties every place tokens are read from.
func TestTokenOnceAndStripToken(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, newClock(), Options{})
	bearer := mustVerifier(t, p, hsConfig(model.TokenSource{}))
	header := mustVerifier(t, p, hsConfig(model.TokenSource{Header: "X-Token"}))
	cookie := mustVerifier(t, p, hsConfig(model.TokenSource{Cookie: "session"}))
	for _, tc := range []struct {
		name      string
		v         *Verifier
		lines     []string
		want      string
		ambiguous bool
		left      string // the header lines left after StripToken, besides Host
	}{
		{"bearer", bearer, []string{"Authorization: Bearer a.b.c"}, "a.b.c", false, ""},
		{"bearer lines same", bearer, []string{"Authorization: Bearer a.b.c", "Authorization: bearer  a.b.c"}, "a.b.c", false, ""},
		{"bearer lines differ", bearer, []string{"Authorization: Bearer a.b.c", "Authorization: Bearer x.y.z"}, "", true, ""},
		{"basic line skipped", bearer, []string{"Authorization: Basic dXNlcg==", "Authorization: Bearer a.b.c"}, "a.b.c", false, ""},
		{"basic alone kept", bearer, []string{"Authorization: Basic dXNlcg=="}, "", false, "Authorization: Basic dXNlcg=="},
		{"header lines differ", header, []string{"X-Token: a.b.c", "X-Token: Bearer x.y.z"}, "", true, ""},
		{"header and bearer both stripped", header, []string{"X-Token: a.b.c", "Authorization: Bearer x.y.z", "X-Other: o"}, "a.b.c", false, "X-Other: o"},
		{"cookie", cookie, []string{"Cookie: a=1; session=a.b.c; session=x.y.z", "Authorization: Bearer q"}, "a.b.c", false, "Cookie: a=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var h fasthttp.RequestHeader
			raw := "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Join(tc.lines, "\r\n") + "\r\n\r\n"
			if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
				t.Fatal(err)
			}
			tok, ambiguous := tc.v.TokenOnce(&h)
			if string(tok) != tc.want || ambiguous != tc.ambiguous {
				t.Fatalf("TokenOnce = %q, %v; want %q, %v", tok, ambiguous, tc.want, tc.ambiguous)
			}
			tc.v.StripToken(&h)
			var left []string
			for k, v := range h.All() {
				if string(k) != "Host" {
					left = append(left, string(k)+": "+string(v))
				}
			}
			if got := strings.Join(left, "\n"); got != tc.left {
				t.Fatalf("left after StripToken: %q, want %q", got, tc.left)
			}
		})
	}
}

// Not parallel: testing.AllocsPerRun refuses parallel tests.
func TestTokenOnceDoesNotAllocate(t *testing.T) {
	p := newTestProvider(t, newClock(), Options{})
	v := mustVerifier(t, p, hsConfig(model.TokenSource{}))
	var src, h fasthttp.RequestHeader
	src.Set("Authorization", "Bearer a.b.c")
	src.Set("X-Other", "o")
	if n := testing.AllocsPerRun(100, func() {
		src.CopyTo(&h)
		if tok, amb := v.TokenOnce(&h); string(tok) != "a.b.c" || amb {
			t.Fatalf("token %q %v", tok, amb)
		}
		v.StripToken(&h)
	}); n != 0 {
		t.Fatalf("TokenOnce + StripToken allocate %v times", n)
	}
}
