package conformance

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// forwarded is a request the upstream must receive: method, path and
// decoded body; its framing must be one Content-Length (when it has a
// body) and no Transfer-Encoding, which check asserts for every request.
type forwarded struct{ method, path, body string }

// conformanceCase is one row of the table. In send and the paths, {p}
// stands for the case's own path prefix (/t/<tag>), so the upstream's
// requests are told apart per case.
type conformanceCase struct {
	name string
	rule string   // what says so: RFC section or published research
	send []string // raw writes on one connection
	// What the client must get: these statuses in order, then the
	// connection closed or still usable.
	want   []int
	closed bool
	// What the upstream must receive from this connection: exactly these
	// requests (none when empty).
	upstream []forwarded
}

const host = "Host: gw.example\r\n"

// req is a request with the given line, extra header lines and body.
func req(line, headers, body string) string {
	return line + "\r\n" + host + headers + "\r\n" + body
}

func get(path string) string { return req("GET "+path+" HTTP/1.1", "", "") }

// smuggled is the request hidden in the body of a framing attack.
const smuggled = "GET {p}/smuggled HTTP/1.1\r\n" + host + "\r\n"

var cases = []conformanceCase{
	// Baselines: what must pass, and how it is forwarded.
	{name: "get", rule: "RFC 9112 §3", send: []string{get("{p}/a")},
		want: []int{200}, upstream: []forwarded{{"GET", "{p}/a", ""}}},
	{name: "post content-length", rule: "RFC 9112 §6.2", send: []string{req("POST {p}/a HTTP/1.1", "Content-Length: 5\r\n", "hello")},
		want: []int{200}, upstream: []forwarded{{"POST", "{p}/a", "hello"}}},
	{name: "post chunked", rule: "RFC 9112 §7.1", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")},
		want: []int{200}, upstream: []forwarded{{"POST", "{p}/a", "hello world"}}},
	{name: "chunked with trailer", rule: "RFC 9112 §7.1.2", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n")},
		want: []int{200}, upstream: []forwarded{{"POST", "{p}/a", "hello"}}},
	{name: "chunked name case-insensitive", rule: "RFC 9112 §7 (coding names are case-insensitive)", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: CHUNKED\r\n", "5\r\nhello\r\n0\r\n\r\n")},
		want: []int{200}, upstream: []forwarded{{"POST", "{p}/a", "hello"}}},
	{name: "te value with leading OWS", rule: "RFC 9110 §5.5 (OWS around a field value is not part of it)", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding:   chunked\r\n", "5\r\nhello\r\n0\r\n\r\n")},
		want: []int{200}, upstream: []forwarded{{"POST", "{p}/a", "hello"}}},
	{name: "te value with leading tab", rule: "RFC 9110 §5.5; TE.TE obfuscation `\\tchunked` read as chunked by both hops", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding:\tchunked\r\n", "5\r\nhello\r\n0\r\n\r\n")},
		want: []int{200}, upstream: []forwarded{{"POST", "{p}/a", "hello"}}},
	{name: "short chunk extension", rule: "RFC 9112 §7.1.1 (extensions are ignored)", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: chunked\r\n", "5;name=value\r\nhello\r\n0\r\n\r\n")},
		want: []int{200}, upstream: []forwarded{{"POST", "{p}/a", "hello"}}},
	{name: "get with content-length body", rule: "RFC 9112 §6.3 (framing does not depend on the method)", send: []string{req("GET {p}/a HTTP/1.1", "Content-Length: 5\r\n", "hello")},
		want: []int{200}, upstream: []forwarded{{"GET", "{p}/a", "hello"}}},
	{name: "http/1.0 without host", rule: "RFC 9112 §3.2 (Host is required of HTTP/1.1 only); §9.3 (1.0 closes)", send: []string{"GET {p}/a HTTP/1.0\r\n\r\n"},
		want: []int{200}, closed: true, upstream: []forwarded{{"GET", "{p}/a", ""}}},
	{name: "empty line before request line", rule: "RFC 9112 §2.2 (SHOULD ignore one empty line before the request-line)", send: []string{"\r\n" + get("{p}/a")},
		want: []int{200}, upstream: []forwarded{{"GET", "{p}/a", ""}}},
	{name: "absolute-form with the same host", rule: "RFC 9112 §3.2.2", send: []string{req("GET http://gw.example{p}/a HTTP/1.1", "", "")},
		want: []int{200}, upstream: []forwarded{{"GET", "{p}/a", ""}}},

	// Pipelining: every request answered, each forwarded once.
	{name: "pipelined pair in one write", rule: "RFC 9112 §9.3.2", send: []string{get("{p}/one") + req("POST {p}/two HTTP/1.1", "Content-Length: 3\r\n", "abc")},
		want: []int{200, 200}, upstream: []forwarded{{"GET", "{p}/one", ""}, {"POST", "{p}/two", "abc"}}},
	{name: "pipelined chunked then get", rule: "RFC 9112 §9.3.2, §7.1", send: []string{req("POST {p}/one HTTP/1.1", "Transfer-Encoding: chunked\r\n", "3\r\nabc\r\n0\r\n\r\n") + get("{p}/two")},
		want: []int{200, 200}, upstream: []forwarded{{"POST", "{p}/one", "abc"}, {"GET", "{p}/two", ""}}},
	{name: "pipelined valid then refused", rule: "RFC 9112 §6.3, §9.6 (close after a framing error)", send: []string{get("{p}/one") + req("POST {p}/two HTTP/1.1", "Transfer-Encoding: identity\r\n", smuggled)},
		want: []int{200, 400}, closed: true, upstream: []forwarded{{"GET", "{p}/one", ""}}},
	{name: "refused then pipelined valid", rule: "RFC 9112 §9.6 (nothing after a refused request is read)", send: []string{req("GET {p}/one HTTP/1.1", "X Foo: 1\r\n", "") + get("{p}/two")},
		want: []int{400}, closed: true},

	// Transfer-Encoding: only exactly chunked, once, alone (RFC 9112 §6.1,
	// §6.3; CL.TE, TE.CL and TE.TE from Linhart et al. 2005 and Kettle,
	// "HTTP Desync Attacks", 2019).
	{name: "te identity hides a request", rule: "RFC 9112 §6.1 (chunked must be final); §6.3 rule 4", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: identity\r\n", smuggled)},
		want: []int{400}, closed: true},
	{name: "cl.te", rule: "RFC 9112 §6.3 rule 3; Kettle 2019 CL.TE", send: []string{req("POST {p}/a HTTP/1.1", "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\nG")},
		want: []int{400}, closed: true},
	{name: "te.cl", rule: "RFC 9112 §6.3 rule 3; Kettle 2019 TE.CL", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", "1\r\nG\r\n0\r\n\r\n")},
		want: []int{400}, closed: true},
	{name: "te xchunked", rule: "RFC 9112 §6.1; Kettle 2019 TE.TE", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: xchunked\r\n", "0\r\n\r\n"+smuggled)},
		want: []int{400}, closed: true},
	{name: "te chunked then identity", rule: "RFC 9112 §6.1 (chunked must be the final coding)", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: chunked, identity\r\n", "0\r\n\r\n"+smuggled)},
		want: []int{400}, closed: true},
	{name: "te gzip, chunked", rule: "RFC 9112 §6.1 (a coding the gateway does not decode)", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n")},
		want: []int{400}, closed: true},
	{name: "te duplicate lines", rule: "RFC 9112 §6.1; Kettle 2019 TE.TE (duplicate header)", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", "0\r\n\r\n"+smuggled)},
		want: []int{400}, closed: true},
	{name: "te space before colon", rule: "RFC 9112 §5.1 (MUST reject whitespace between name and colon)", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding : chunked\r\n", "0\r\n\r\n"+smuggled)},
		want: []int{400}, closed: true},
	{name: "te in obs-fold", rule: "RFC 9112 §5.2 (obs-fold: reject or replace); Kettle 2019 TE.TE", send: []string{req("POST {p}/a HTTP/1.1", "X: 1\r\n Transfer-Encoding: chunked\r\n", "0\r\n\r\n"+smuggled)},
		want: []int{400}, closed: true},
	{name: "te in http/1.0", rule: "RFC 9112 §6.1 (faulty framing in HTTP/1.0)", send: []string{"POST {p}/a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		want: []int{400}, closed: true},
	{name: "te with name suffix", rule: "RFC 9110 §5.6.2 (header name is a token); header-name tricks", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding x: chunked\r\n", "0\r\n\r\n"+smuggled)},
		want: []int{400}, closed: true},

	// Content-Length (RFC 9110 §8.6, RFC 9112 §6.3 rule 5).
	{name: "cl duplicate differing", rule: "RFC 9112 §6.3 rule 5", send: []string{req("POST {p}/a HTTP/1.1", "Content-Length: 3\r\nContent-Length: 5\r\n", "hello")},
		want: []int{400}, closed: true},
	{name: "cl duplicate identical", rule: "RFC 9110 §8.6 (MAY reject; the gateway does)", send: []string{req("POST {p}/a HTTP/1.1", "Content-Length: 5\r\nContent-Length: 5\r\n", "hello")},
		want: []int{400}, closed: true},
	{name: "cl list", rule: "RFC 9110 §8.6 (1*DIGIT)", send: []string{req("POST {p}/a HTTP/1.1", "Content-Length: 5, 5\r\n", "hello")},
		want: []int{400}, closed: true},
	{name: "cl plus sign", rule: "RFC 9110 §8.6 (1*DIGIT)", send: []string{req("POST {p}/a HTTP/1.1", "Content-Length: +5\r\n", "hello")},
		want: []int{400}, closed: true},
	{name: "cl minus sign", rule: "RFC 9110 §8.6 (1*DIGIT)", send: []string{req("POST {p}/a HTTP/1.1", "Content-Length: -5\r\n", "hello")},
		want: []int{400}, closed: true},
	{name: "cl inner space", rule: "RFC 9110 §8.6 (1*DIGIT)", send: []string{req("POST {p}/a HTTP/1.1", "Content-Length: 5 0\r\n", "hello")},
		want: []int{400}, closed: true},
	{name: "cl hex", rule: "RFC 9110 §8.6 (1*DIGIT)", send: []string{req("POST {p}/a HTTP/1.1", "Content-Length: 0x5\r\n", "hello")},
		want: []int{400}, closed: true},
	{name: "cl overflow", rule: "RFC 9112 §6.3 rule 5 (invalid length)", send: []string{req("POST {p}/a HTTP/1.1", "Content-Length: 99999999999999999999999\r\n", "hello")},
		want: []int{400}, closed: true},

	// Header names and values (RFC 9110 §5.1, §5.5, RFC 9112 §5).
	{name: "name with space", rule: "RFC 9110 §5.6.2 (token)", send: []string{req("GET {p}/a HTTP/1.1", "X Foo: 1\r\n", "")},
		want: []int{400}, closed: true},
	{name: "name empty", rule: "RFC 9110 §5.1 (field-name is a token)", send: []string{req("GET {p}/a HTTP/1.1", ": 1\r\n", "")},
		want: []int{400}, closed: true},
	{name: "name with nul", rule: "RFC 9110 §5.6.2 (token)", send: []string{req("GET {p}/a HTTP/1.1", "X\x00Foo: 1\r\n", "")},
		want: []int{400}, closed: true},
	{name: "value with nul", rule: "RFC 9110 §5.5 (MUST reject or replace NUL)", send: []string{req("GET {p}/a HTTP/1.1", "X-Foo: a\x00b\r\n", "")},
		want: []int{400}, closed: true},
	{name: "name with non-ascii", rule: "RFC 9110 §5.6.2 (token)", send: []string{req("GET {p}/a HTTP/1.1", "X-F\xc3\xb6o: 1\r\n", "")},
		want: []int{400}, closed: true},
	{name: "obs-fold", rule: "RFC 9112 §5.2 (reject with 400, or replace)", send: []string{req("GET {p}/a HTTP/1.1", "X-Foo: a\r\n b\r\n", "")},
		want: []int{400}, closed: true},
	{name: "first header line folded", rule: "RFC 9112 §2.2 (whitespace before the first field line: reject)", send: []string{"GET {p}/a HTTP/1.1\r\n " + host + "\r\n"},
		want: []int{400}, closed: true},

	// Line endings (RFC 9112 §2.2).
	{name: "bare lf everywhere", rule: "RFC 9112 §2.2 (a recipient MAY accept bare LF; the gateway refuses it)", send: []string{"GET {p}/a HTTP/1.1\nHost: gw.example\n\n"},
		want: []int{400}, closed: true},
	{name: "bare lf after request line", rule: "RFC 9112 §2.2", send: []string{"GET {p}/a HTTP/1.1\n" + host + "\r\n"},
		want: []int{400}, closed: true},
	{name: "bare lf in a header line", rule: "RFC 9112 §2.2", send: []string{req("GET {p}/a HTTP/1.1", "X-A: 1\nX-B: 2\r\n", "")},
		want: []int{400}, closed: true},
	{name: "bare lf ends the head, crlf later", rule: "RFC 9112 §2.2; parsers that disagree on the end of the head", send: []string{"GET {p}/a HTTP/1.1\r\n" + host + "\n" + get("{p}/b")},
		want: []int{400}, closed: true},
	{name: "bare cr in a header value", rule: "RFC 9112 §2.2 (bare CR: MUST reject or replace)", send: []string{req("GET {p}/a HTTP/1.1", "X-A: 1\rX-B: 2\r\n", "")},
		want: []int{400}, closed: true},
	{name: "bare cr ends a header line", rule: "RFC 9112 §2.2", send: []string{"GET {p}/a HTTP/1.1\r\n" + "Host: gw.example\rX-B: 2\r\n\r\n"},
		want: []int{400}, closed: true},
	{name: "bare cr in request line", rule: "RFC 9112 §2.2, §3", send: []string{req("GET {p}/a\rb HTTP/1.1", "", "")},
		want: []int{400}, closed: true},

	// Request line (RFC 9112 §2.3, §3).
	{name: "http/9.9", rule: "RFC 9112 §2.3 (only HTTP/1.x framing is understood)", send: []string{req("GET {p}/a HTTP/9.9", "", "")},
		want: []int{400}, closed: true},
	{name: "http/1.2", rule: "RFC 9112 §2.3 (unknown minor version of a server that knows 1.1)", send: []string{req("GET {p}/a HTTP/1.2", "", "")},
		want: []int{400}, closed: true},
	{name: "lowercase version", rule: "RFC 9112 §2.3 (HTTP-name is case-sensitive)", send: []string{req("GET {p}/a http/1.1", "", "")},
		want: []int{400}, closed: true},
	{name: "nul in request target", rule: "RFC 9112 §3.2", send: []string{req("GET {p}/a\x00 HTTP/1.1", "", "")},
		want: []int{400}, closed: true},

	// Host (RFC 9112 §3.2, §3.2.2; host-header attacks).
	{name: "absolute-form with another host", rule: "RFC 9112 §3.2.2; routing by one host and forwarding the other", send: []string{req("GET http://other.example{p}/a HTTP/1.1", "", "")},
		want: []int{400}, closed: true},
	{name: "host duplicated", rule: "RFC 9112 §3.2 (more than one Host: 400)", send: []string{req("GET {p}/a HTTP/1.1", "Host: other.example\r\n", "")},
		want: []int{400}, closed: true},
	{name: "host missing in http/1.1", rule: "RFC 9112 §3.2 (no Host in 1.1: 400)", send: []string{"GET {p}/a HTTP/1.1\r\n\r\n"},
		want: []int{400}, closed: true},

	// Chunked body (RFC 9112 §7.1).
	{name: "chunk size overflow", rule: "RFC 9112 §7.1 (recipient MUST anticipate overflow)", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: chunked\r\n", "10000000000000005\r\nhello\r\n0\r\n\r\n")},
		want: []int{400}, closed: true},
	{name: "chunk size with leading zeros", rule: "RFC 9112 §7.1 (very long chunk-size)", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: chunked\r\n", strings.Repeat("0", 40)+"5\r\nhello\r\n0\r\n\r\n")},
		want: []int{400}, closed: true},
	{name: "chunk size above the body limit", rule: "RFC 9110 §15.5.14 (413)", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: chunked\r\n", "fffffffffff\r\nhello")},
		want: []int{413}, closed: true},
	{name: "chunk size not hex", rule: "RFC 9112 §7.1", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: chunked\r\n", "5g\r\nhello\r\n0\r\n\r\n")},
		want: []int{400}, closed: true},
	{name: "chunk extension without bound", rule: "RFC 9112 §7.1.1 (a server ought to limit extensions)", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: chunked\r\n", "5;"+strings.Repeat("a", 8000)+"\r\nhello\r\n0\r\n\r\n")},
		want: []int{400}, closed: true},
	{name: "chunk extensions add up", rule: "RFC 9112 §7.1.1 (limit per message)", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: chunked\r\n", strings.Repeat("1;"+strings.Repeat("e", 500)+"\r\nx\r\n", 10)+"0\r\n\r\n")},
		want: []int{400}, closed: true},
	{name: "chunk without crlf after data", rule: "RFC 9112 §7.1 (invalid chunk terminator)", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: chunked\r\n", "5\r\nhelloXX0\r\n\r\n")},
		want: []int{400}, closed: true},
	{name: "chunk data longer than its size", rule: "RFC 9112 §7.1 (invalid chunk terminator)", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: chunked\r\n", "3\r\nhello\r\n0\r\n\r\n")},
		want: []int{400}, closed: true},
	{name: "chunk size line ends in bare lf", rule: "RFC 9112 §2.2, §7.1", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: chunked\r\n", "5\nhello\r\n0\r\n\r\n")},
		want: []int{400}, closed: true},
	{name: "last chunk ends in bare lf", rule: "RFC 9112 §2.2, §7.1", send: []string{req("POST {p}/a HTTP/1.1", "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\n\n"+smuggled)},
		want: []int{400}, closed: true},

	// Expect (RFC 9110 §10.1.1).
	{name: "expect 100-continue over the limit", rule: "RFC 9110 §10.1.1 (a final status instead of 100); §15.5.14", send: []string{req("POST {p}/a HTTP/1.1", "Expect: 100-continue\r\nContent-Length: "+strconv.Itoa(maxBody+1)+"\r\n", "")},
		want: []int{413}, closed: true},
	{name: "expect 100-continue with refused framing", rule: "RFC 9110 §10.1.1; RFC 9112 §6.1", send: []string{req("POST {p}/a HTTP/1.1", "Expect: 100-continue\r\nTransfer-Encoding: identity\r\n", "")},
		want: []int{400}, closed: true},
	{name: "expect 100-continue within the limit", rule: "RFC 9110 §10.1.1", send: []string{req("POST {p}/a HTTP/1.1", "Expect: 100-continue\r\nContent-Length: 5\r\n", "hello")},
		want: []int{100, 200}, upstream: []forwarded{{"POST", "{p}/a", "hello"}}},
}

// TestConformance runs the table against a sluice-gateway process: for
// each case it asserts what the client got (statuses, connection closed
// or not) and what the upstream received (exactly the listed requests,
// each framed by one Content-Length and read as one message).
func TestConformance(t *testing.T) {
	rec := startRecorder(t)
	gw := startGateway(t, rec.addr())
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.check(t, gw, rec, fmt.Sprintf("c%02d", i))
		})
	}
}

func (tc conformanceCase) check(t *testing.T, gw *gateway, rec *recorder, tag string) {
	p := "/t/" + tag
	fill := func(s string) string { return strings.ReplaceAll(s, "{p}", p) }
	if tc.rule == "" {
		t.Fatal("case without a rule")
	}
	writes := make([]string, len(tc.send))
	for i, w := range tc.send {
		writes[i] = fill(w)
	}
	answers, closed, err := exchange(gw.addr, writes, len(tc.want), fill(get("{p}/after")))
	if err != nil {
		t.Fatalf("%s: got %s: %v", tc.rule, statuses(answers), err)
	}
	want := tc.upstream
	if !closed {
		// The follow-up request was answered on the same connection.
		if a := answers[len(answers)-1]; a.status != 200 {
			t.Errorf("follow-up on the kept connection: %d %s", a.status, a.body)
		}
		answers = answers[:len(answers)-1]
		want = append(append([]forwarded(nil), want...), forwarded{"GET", "{p}/after", ""})
	}
	for i, a := range answers {
		if a.status != tc.want[i] {
			t.Errorf("%s: statuses %s, want %v", tc.rule, statuses(answers), tc.want)
			break
		}
		if a.status >= 400 && !strings.Contains(a.body, `"error":{"code":`) {
			t.Errorf("answer %d (%d) is not the JSON error: %q", i+1, a.status, a.body)
		}
	}
	if closed != tc.closed {
		t.Errorf("%s: connection closed %v, want %v", tc.rule, closed, tc.closed)
	}
	got := rec.requests(tag)
	if len(got) != len(want) {
		t.Fatalf("%s: the upstream received %d requests, want %d: %q", tc.rule, len(got), len(want), raws(got))
	}
	for i, r := range got {
		w := want[i]
		switch {
		case r.err != nil:
			t.Errorf("upstream request %d unreadable (%v): %q", i+1, r.err, r.raw)
		case r.method != w.method || r.target != fill(w.path) || string(r.body) != w.body || r.proto != proto(writes):
			t.Errorf("upstream request %d: %s %s %s body %q, want %s %s body %q", i+1, r.method, r.target, r.proto, r.body, w.method, fill(w.path), w.body)
		case r.chunked || len(r.header("Transfer-Encoding")) > 0:
			t.Errorf("upstream request %d framed by Transfer-Encoding: %q", i+1, r.raw)
		case len(w.body) > 0 && !equal(r.header("Content-Length"), strconv.Itoa(len(w.body))):
			t.Errorf("upstream request %d: Content-Length %q for a body of %d bytes", i+1, r.header("Content-Length"), len(w.body))
		}
	}
}

// proto is the version the upstream must be spoken to in: the client's.
func proto(writes []string) string {
	if strings.Contains(writes[0], " HTTP/1.0\r\n") {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

func equal(vs []string, v string) bool { return len(vs) == 1 && vs[0] == v }

func raws(rs []*received) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r.raw)
	}
	return out
}
