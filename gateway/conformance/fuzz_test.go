package conformance

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzGateway sends raw bytes to a running sluice-gateway on one
// connection, half-closes it, and reads every answer until the gateway
// closes. Then:
//   - every request the upstream received is readable as one message;
//   - the upstream received exactly as many requests as the client got
//     answers from it (none the gateway did not answer as one);
//   - those requests are, in order, among the requests a strict reading
//     of the bytes finds (reference below: RFC 9112 with the gateway's
//     rules) before the first one it refuses: nothing the strict reading
//     sees as a body, or after a refusal, reaches the upstream.
//
// Seeds: the conformance table and testdata/fuzz/FuzzGateway.
func FuzzGateway(f *testing.F) {
	for _, tc := range cases {
		f.Add([]byte(strings.ReplaceAll(strings.Join(tc.send, ""), "{p}", "/t/fuzz")))
	}
	rec := startRecorder(f)
	gw := startGateway(f, rec.addr())
	f.Fuzz(func(t *testing.T, in []byte) {
		before := len(rec.received())
		answered, err := sendRaw(gw.addr, in)
		if err != nil {
			t.Fatal(err)
		}
		got := rec.received()[before:]
		for _, r := range got {
			if r.err != nil {
				t.Fatalf("the upstream received an unreadable request (%v): %q", r.err, r.raw)
			}
		}
		if len(got) != answered {
			t.Fatalf("the upstream received %d requests, the client got %d answers from it, for %q", len(got), answered, in)
		}
		valid := strictRequests(in)
		j := 0
		for _, r := range got {
			for j < len(valid) && (valid[j].method != r.method || !bytes.Equal(valid[j].body, r.body)) {
				j++
			}
			if j == len(valid) {
				t.Fatalf("the upstream received %s %s body %q, not one of the strictly valid requests %s of %q", r.method, r.target, r.body, describe(valid), in)
			}
			j++
		}
	})
}

// strictRequests reads in as a strict HTTP/1.1 server does and returns
// the requests before the first it would refuse.
func strictRequests(in []byte) []*received {
	br := bufio.NewReader(bytes.NewReader(in))
	var out []*received
	for {
		// RFC 9112 section 2.2: empty lines before a request line.
		for {
			if b, err := br.Peek(2); err != nil || string(b) != "\r\n" {
				break
			}
			_, _ = br.Discard(2)
		}
		r := readRequest(br)
		if r == nil || r.err != nil || !strictlyValid(r) {
			return out
		}
		out = append(out, r)
	}
}

// strictlyValid applies the rules readRequest does not: tokens, versions,
// one Host, one framing, no control characters.
func strictlyValid(r *received) bool {
	if !isToken(r.method) || (r.proto != "HTTP/1.1" && r.proto != "HTTP/1.0") || r.target == "" || hasCTL(r.target, false) {
		return false
	}
	for _, h := range r.headers {
		if !isToken(h[0]) || hasCTL(h[1], true) {
			return false
		}
	}
	hosts, te := len(r.header("Host")), len(r.header("Transfer-Encoding"))
	switch {
	case hosts > 1, hosts == 0 && r.proto == "HTTP/1.1":
		return false
	case te > 0 && r.proto == "HTTP/1.0":
		return false
	}
	return true
}

func isToken(s string) bool {
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return s != ""
}

func hasCTL(s string, tabOK bool) bool {
	for _, c := range []byte(s) {
		if (c < ' ' && !(tabOK && c == '\t')) || c == 0x7f {
			return true
		}
	}
	return false
}

func describe(rs []*received) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.method + " " + r.target
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// sendRaw writes in on a new connection, half-closes it, and counts the
// answers that came from the upstream until the gateway closes.
func sendRaw(addr string, in []byte) (fromUpstream int, err error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(in); err != nil && !isReset(err) {
		return 0, err
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	br := bufio.NewReader(conn)
	for {
		a, err := upstreamAnswer(br)
		switch {
		case errors.Is(err, io.EOF), isReset(err):
			return fromUpstream, nil
		case err != nil:
			return fromUpstream, errors.New("gateway answer unreadable or missing: " + err.Error())
		}
		if a {
			fromUpstream++
		}
	}
}

// upstreamAnswer reads one answer and reports whether the upstream gave
// it (its mark header); io.EOF when the gateway closed before another.
func upstreamAnswer(br *bufio.Reader) (bool, error) {
	if _, err := br.Peek(1); err != nil {
		return false, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return false, err
	}
	return resp.Header.Get(upstreamMark) != "", nil
}
