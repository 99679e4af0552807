package server

import (
	"strings"
	"testing"
)

// TestWire feeds byte streams to the wire guard, whole and one byte at a
// time: it must deliver everything (want -1) or stop at the offending byte
// with the named answer. The body bound is 16 bytes per message.
func TestWire(t *testing.T) {
	t.Parallel()
	const get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	chunked := func(body string) string {
		return "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body
	}
	longExt := "5;" + strings.Repeat("e", maxChunkExt) + "\r\nhello\r\n0\r\n\r\n"
	cases := []struct {
		name, in string
		at       int // offset of the first refused byte, -1: none
		want     *Error
	}{
		{"get", get, -1, nil},
		{"pipelined", get + get, -1, nil},
		{"empty line first", "\r\n" + get, -1, nil},
		{"content-length body", "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\na\nb" + get, -1, nil},
		{"chunked", chunked("5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n") + get, -1, nil},
		{"bare lf request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 14, errLineEnding},
		{"bare lf header", "GET / HTTP/1.1\r\nHost: a\n\r\n", 23, errLineEnding},
		{"bare lf end of head", "GET / HTTP/1.1\r\nHost: a\r\n\n", 25, errLineEnding},
		{"bare cr", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 26, errLineEnding},
		{"bare lf second request", get + "GET / HTTP/1.1\n", len(get) + 14, errLineEnding},
		{"chunk size bare lf", chunked("5\nhello"), len(chunked("")) + 1, errLineEnding},
		{"chunk size not hex", chunked("x\r\n"), len(chunked("")) + 2, errChunkLine},
		{"chunk size overflow", chunked(strings.Repeat("f", 16) + "\r\n"), len(chunked("")) + 17, errChunkLine},
		{"chunk not followed by crlf", chunked("1\r\naXY"), len(chunked("")) + 4, errChunkLine},
		{"chunk extension too long", chunked(longExt), len(chunked("")) + len("5;") + maxChunkExt + 1, errChunkLine},
		{"chunk extension without end", chunked("5;" + strings.Repeat("e", 2*maxChunkExt)), len(chunked("")) + maxChunkDigits + maxChunkExt + 1, errChunkLine},
		{"te identity: not followed", "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\nGET / HTTP/1.1\n", -1, nil},
		{"chunks up to the body bound", chunked("10\r\n"+strings.Repeat("b", 16)+"\r\n0\r\n\r\n") + chunked("10\r\n"+strings.Repeat("b", 16)+"\r\n0\r\n\r\n"), -1, nil},
		{"chunks past the body bound", chunked("10\r\n" + strings.Repeat("b", 16) + "\r\n1\r\n"), len(chunked("")) + 24, ErrBodyTooLarge},
		{"chunk size past the body bound", chunked("fffffffffff\r\nhello"), len(chunked("")) + 12, ErrBodyTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, step := range []int{len(tc.in), 1, 7} {
				w := newWire(8192)
				w.maxBody = 16 // chunk sizes of one message
				delivered := 0
				for i := 0; i < len(tc.in) && w.refusal == nil; i += step {
					p := []byte(tc.in[i:min(i+step, len(tc.in))])
					delivered += w.feed(p)
				}
				at := -1
				if w.refusal != nil {
					at = delivered
				}
				if at != tc.at || w.refusal != tc.want {
					t.Fatalf("step %d: refused at %d with %v, want %d with %v", step, at, w.refusal, tc.at, tc.want)
				}
			}
		})
	}
}

// FuzzWire checks that the wire guard decides the same however the stream
// is split into reads, and never delivers bytes past a refusal.
func FuzzWire(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), uint8(3))
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a\r\nhello\r\n0\r\n\r\n"), uint8(9))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		whole := newWire(1024)
		n := whole.feed(in)
		if n > len(in) || (whole.refusal == nil && n != len(in)) {
			t.Fatalf("delivered %d of %d", n, len(in))
		}
		s := int(step%16) + 1
		split := newWire(1024)
		got := 0
		for i := 0; i < len(in) && split.refusal == nil; i += s {
			got += split.feed(in[i:min(i+s, len(in))])
		}
		if got != n || split.refusal != whole.refusal {
			t.Fatalf("whole: %d %v; in reads of %d: %d %v", n, whole.refusal, s, got, split.refusal)
		}
	})
}

// BenchmarkWire is the wire guard's cost per request, for the same head as
// BenchmarkRequestFraming and for a chunked upload of 4 KiB:
// go test -run '^$' -bench Wire -benchmem ./internal/server/
func BenchmarkWire(b *testing.B) {
	head := "GET /api/items?page=2 HTTP/1.1\r\nHost: api.example\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n" +
		"Accept: application/json\r\nAccept-Encoding: gzip, deflate, br\r\nAuthorization: Bearer abcdefghijklmnopqrstuvwxyz0123456789\r\n" +
		"Cookie: a=1; b=2\r\nX-Request-Id: 4f1c2b9e-8c1d-4a57-9f57-2b8f0b7f1e11\r\n\r\n"
	upload := "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
		strings.Repeat("400\r\n"+strings.Repeat("x", 1024)+"\r\n", 4) + "0\r\n\r\n"
	for _, tc := range []struct{ name, in string }{{"head", head}, {"chunked-4KiB", upload}} {
		b.Run(tc.name, func(b *testing.B) {
			w := newWire(8192)
			in := []byte(tc.in)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if w.feed(in) != len(in) {
					b.Fatal(w.refusal)
				}
			}
		})
	}
}
