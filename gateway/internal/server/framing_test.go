package server

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestRequestFraming runs the raw-header guard on requests fasthttp
// accepted: each case names the answer it must get (nil: it passes).
func TestRequestFraming(t *testing.T) {
	t.Parallel()
	const host = "Host: a\r\n"
	cases := []struct {
		name, head string
		want       *Error
	}{
		{"plain", "GET / HTTP/1.1\r\n" + host, nil},
		{"http/1.0 without host", "GET / HTTP/1.0\r\n", nil},
		{"chunked", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n", nil},
		{"chunked any case, OWS", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: \tChunked \r\n", nil},
		{"content-length", "POST / HTTP/1.1\r\n" + host + "Content-Length: 12\r\n", nil},
		{"obs-text value", "GET / HTTP/1.1\r\n" + host + "X-A: caf\xc3\xa9\r\n", nil},
		{"absolute form, same host", "GET http://a/x HTTP/1.1\r\n" + host, nil},
		{"absolute form, userinfo, same host", "GET http://u@a/x HTTP/1.1\r\n" + host, nil},
		{"http/9.9", "GET / HTTP/9.9\r\n" + host, errVersion},
		{"http/1.2", "GET / HTTP/1.2\r\n" + host, errVersion},
		{"te identity", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: identity\r\n", errTransferCode},
		{"te and cl", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 1\r\n", errBothLengths},
		{"name with space", "GET / HTTP/1.1\r\n" + host + "X Foo: 1\r\n", errHeaderName},
		{"te name with suffix", "GET / HTTP/1.1\r\n" + host + "Transfer-Encoding x: chunked\r\n", errHeaderName},
		{"obs-fold", "GET / HTTP/1.1\r\n" + host + "X-A: 1\r\n 2\r\n", errObsFold},
		{"bare lf", "GET / HTTP/1.1\r\n" + host + "X-A: 1\nX-B: 2\r\n", errLineEnding},
		{"absolute form, other host", "GET http://b/x HTTP/1.1\r\n" + host, errHost},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var h fasthttp.RequestHeader
			if err := h.Read(bufio.NewReader(strings.NewReader(tc.head + "\r\n"))); err != nil {
				t.Fatalf("fasthttp refused it already (%v): the guard is not what is tested", err)
			}
			if got := requestFraming(&h); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestScanHeaderBlock covers what fasthttp refuses before the guard sees
// it, so the guard holds on its own.
func TestScanHeaderBlock(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, raw string
		want      *Error
	}{
		{"empty", "", nil},
		{"ok", "Host: a\r\nContent-Length: 0\r\n\r\n", nil},
		{"space before colon", "Transfer-Encoding : chunked\r\n\r\n", errHeaderName},
		{"empty name", ": x\r\n\r\n", errHeaderName},
		{"no colon", "Host a\r\n\r\n", errHeaderName},
		{"nul in value", "X: a\x00b\r\n\r\n", errHeaderValue},
		{"bare cr in value", "X: a\rb\r\n\r\n", errHeaderValue},
		{"del in value", "X: a\x7fb\r\n\r\n", errHeaderValue},
		{"cl twice", "Content-Length: 1\r\nContent-Length: 1\r\n\r\n", errContentLength},
		{"cl sign", "Content-Length: +1\r\n\r\n", errContentLength},
		{"cl empty", "Content-Length: \r\n\r\n", errContentLength},
		{"te twice", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", errTransferCode},
		{"no line end", "Host: a", errLineEnding},
		{"leading lf", "\n", errLineEnding},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, got := scanHeaderBlock([]byte(tc.raw)); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// BenchmarkRequestFraming is the guard's cost on a browser-like request:
// go test -run '^$' -bench RequestFraming -benchmem ./internal/server/
func BenchmarkRequestFraming(b *testing.B) {
	head := "GET /api/items?page=2 HTTP/1.1\r\nHost: api.example\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n" +
		"Accept: application/json\r\nAccept-Encoding: gzip, deflate, br\r\nAuthorization: Bearer abcdefghijklmnopqrstuvwxyz0123456789\r\n" +
		"Cookie: a=1; b=2\r\nX-Request-Id: 4f1c2b9e-8c1d-4a57-9f57-2b8f0b7f1e11\r\n\r\n"
	var h fasthttp.RequestHeader
	if err := h.Read(bufio.NewReader(strings.NewReader(head))); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := requestFraming(&h); err != nil {
			b.Fatal(err)
		}
	}
}
