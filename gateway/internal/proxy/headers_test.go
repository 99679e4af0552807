package proxy

import (
	"bufio"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// parseRequest reads a raw request the way the traffic listener does (names
// normalised), so repeated header lines stay separate.
func parseRequest(t testing.TB, head string) *fasthttp.Request {
	t.Helper()
	req := &fasthttp.Request{}
	if err := req.Read(bufio.NewReader(strings.NewReader(head + "\r\n"))); err != nil {
		t.Fatalf("parse request: %v", err)
	}
	return req
}

// parseResponse reads a raw response the way the upstream clients do
// (names kept as the upstream wrote them).
func parseResponse(t testing.TB, head string) *fasthttp.Response {
	t.Helper()
	resp := &fasthttp.Response{}
	resp.Header.DisableNormalizing()
	resp.SkipBody = true
	if err := resp.Read(bufio.NewReader(strings.NewReader(head + "\r\n"))); err != nil {
		t.Fatalf("parse response: %v", err)
	}
	return resp
}

// names lists the header names present, lower-cased and sorted.
func names(all func(func([]byte, []byte) bool)) []string {
	var out []string
	for k := range all {
		out = append(out, strings.ToLower(string(k)))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func manyOptions(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("X-O" + strconv.Itoa(i))
	}
	return b.String()
}

func TestStripRequest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		headers string
		want    []string // header names left, lower case
		err     error
	}{
		{"second connection line counts",
			"Connection: keep-alive\r\nConnection: X-Two\r\nX-Two: 2\r\nX-End: e\r\n",
			[]string{"host", "x-end"}, nil},
		{"names ignore case",
			"connection: x-lower, X-UPPER\r\nX-Lower: 1\r\nx-upper: 2\r\nX-End: e\r\n",
			[]string{"host", "x-end"}, nil},
		{"every hop-by-hop header",
			"Keep-Alive: 1\r\nProxy-Connection: x\r\nProxy-Authorization: Basic x\r\nTE: trailers\r\nUpgrade: h2c\r\nX-End: e\r\n",
			[]string{"host", "x-end"}, nil},
		{"empty and spaced options",
			"Connection: ,  , X-A ,\t,\r\nX-A: 1\r\nX-End: e\r\n",
			[]string{"host", "x-end"}, nil},
		{"gateway headers not removable",
			"Connection: Host, Content-Length, Transfer-Encoding\r\nContent-Length: 0\r\nX-End: e\r\n",
			[]string{"content-length", "host", "x-end"}, nil},
		{"at the bound",
			"Connection: " + manyOptions(MaxConnectionOptions) + "\r\nX-O31: 1\r\nX-End: e\r\n",
			[]string{"host", "x-end"}, nil},
		{"past the bound over two lines",
			"Connection: " + manyOptions(MaxConnectionOptions) + "\r\nConnection: X-Last\r\nX-End: e\r\n",
			nil, ErrConnectionOptions},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := parseRequest(t, "GET / HTTP/1.1\r\nHost: a.example\r\n"+tc.headers)
			err := StripRequest(req)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if got := names(req.Header.All()); !slices.Equal(got, tc.want) {
				t.Fatalf("left %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStripResponse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		headers string
		want    []string
		err     error
	}{
		{"second connection line counts",
			"Connection: keep-alive\r\nConnection: X-Two\r\nX-Two: 2\r\nX-End: e\r\n",
			[]string{"content-length", "content-type", "x-end"}, nil},
		{"upstream names in any case",
			"connection: x-lower\r\nCONNECTION: X-Upper\r\nx-lower: 1\r\nx-UPPER: 2\r\nkeep-alive: timeout=5\r\nUPGRADE: h2c\r\nproxy-authenticate: Basic\r\nX-End: e\r\n",
			[]string{"content-length", "content-type", "x-end"}, nil},
		{"more than one batch of names",
			"Connection: " + manyOptions(20) + "\r\n" + func() string {
				var b strings.Builder
				for i := 0; i < 20; i++ {
					b.WriteString("X-O" + strconv.Itoa(i) + ": v\r\nx-o" + strconv.Itoa(i) + ": w\r\n")
				}
				return b.String()
			}() + "X-End: e\r\n",
			[]string{"content-length", "content-type", "x-end"}, nil},
		{"content-length not removable",
			"Connection: Content-Length, X-A\r\nX-A: 1\r\nX-End: e\r\n",
			[]string{"content-length", "content-type", "x-end"}, nil},
		{"past the bound",
			"Connection: " + manyOptions(MaxConnectionOptions+1) + "\r\nX-End: e\r\n",
			nil, ErrConnectionOptions},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := parseResponse(t, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"+tc.headers)
			err := StripResponse(resp)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if got := names(resp.Header.All()); !slices.Equal(got, tc.want) {
				t.Fatalf("left %v, want %v", got, tc.want)
			}
		})
	}
}

// CheckRequest refuses exactly what StripRequest and SetForwarded would,
// changing nothing.
func TestCheckRequest(t *testing.T) {
	t.Parallel()
	long := "X-Forwarded-For: " + strings.Repeat("1", 40) + "\r\nX-Forwarded-For: " + strings.Repeat("2", 30) + "\r\n" // 72 joined
	cases := []struct {
		name, headers string
		f             Forwarding
		err           error
	}{
		{"plain", "X-Forwarded-For: 1.2.3.4\r\nConnection: keep-alive\r\n", Forwarding{}, nil},
		{"options past the bound", "Connection: " + manyOptions(MaxConnectionOptions) + "\r\nConnection: X-Last\r\n", Forwarding{}, ErrConnectionOptions},
		{"list past the bound", long, Forwarding{MaxForwardedFor: 71}, ErrForwardedForTooLong},
		{"list at the bound", long, Forwarding{MaxForwardedFor: 72}, nil},
		{"list named in connection", long + "Connection: x-forwarded-for\r\n", Forwarding{MaxForwardedFor: 64}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := parseRequest(t, "GET / HTTP/1.1\r\nHost: a.example\r\n"+tc.headers)
			before := req.Header.String()
			if err := CheckRequest(req, tc.f); err != tc.err {
				t.Fatalf("CheckRequest = %v, want %v", err, tc.err)
			}
			if req.Header.String() != before {
				t.Fatal("CheckRequest changed the request")
			}
			err := StripRequest(req)
			if err == nil {
				err = SetForwarded(req, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7)}, false, tc.f)
			}
			if err != tc.err {
				t.Fatalf("strip and set forwarded: %v, want %v", err, tc.err)
			}
		})
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

func TestSetForwarded(t *testing.T) {
	t.Parallel()
	v4 := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5555}
	v6 := &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 5555}
	long := strings.Repeat("10.0.0.1, ", 19) + "10.0.0.100" // 200 bytes
	cases := []struct {
		name    string
		headers string
		remote  net.Addr
		f       Forwarding
		want    map[string][]string // every value of each header the upstream gets
		err     error
	}{
		{"no incoming list", "", v4, Forwarding{},
			map[string][]string{"X-Forwarded-For": {"192.0.2.7"}, "X-Real-Ip": {"192.0.2.7"}}, nil},
		{"lines joined, client last", "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2, 10.0.0.3\r\n", v4, Forwarding{},
			map[string][]string{"X-Forwarded-For": {"10.0.0.1, 10.0.0.2, 10.0.0.3, 192.0.2.7"}}, nil},
		{"empty lines skipped", "X-Forwarded-For: \r\nX-Forwarded-For: 10.0.0.1\r\n", v6, Forwarding{},
			map[string][]string{"X-Forwarded-For": {"10.0.0.1, 2001:db8::1"}, "X-Real-Ip": {"2001:db8::1"}}, nil},
		{"at the bound", "X-Forwarded-For: " + long + "\r\n", v4, Forwarding{MaxForwardedFor: 200},
			map[string][]string{"X-Forwarded-For": {long + ", 192.0.2.7"}}, nil},
		{"past the bound", "X-Forwarded-For: " + long + "\r\nX-Forwarded-For: 1.2.3.4\r\n", v4, Forwarding{MaxForwardedFor: 200},
			nil, ErrForwardedForTooLong},
		{"past the default bound", "X-Forwarded-For: " + strings.Repeat("1", DefaultMaxForwardedFor+1) + "\r\n", v4, Forwarding{},
			nil, ErrForwardedForTooLong},
		{"client headers stripped", "Forwarded: for=6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nX-Real-Ip: 7.7.7.7\r\n", v4, Forwarding{},
			map[string][]string{"Forwarded": nil, "X-Real-Ip": {"192.0.2.7"}}, nil},
		{"client headers passed", "Forwarded: for=6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n", v4, Forwarding{ClientHeaders: PassClientHeaders},
			map[string][]string{"Forwarded": {"for=6.6.6.6"}, "X-Real-Ip": {"6.6.6.6"}}, nil},
		{"client headers passed, none sent", "", v4, Forwarding{ClientHeaders: PassClientHeaders},
			map[string][]string{"X-Real-Ip": nil, "X-Forwarded-For": {"192.0.2.7"}}, nil},
		{"unknown remote", "X-Forwarded-For: 10.0.0.1\r\nX-Real-IP: 6.6.6.6\r\n", pipeAddr{}, Forwarding{},
			map[string][]string{"X-Forwarded-For": {"10.0.0.1"}, "X-Real-Ip": nil}, nil},
		{"proto and host set", "X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n", v4, Forwarding{},
			map[string][]string{"X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"a.example"}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := parseRequest(t, "GET / HTTP/1.1\r\nHost: a.example\r\n"+tc.headers)
			before := req.Header.String()
			err := SetForwarded(req, tc.remote, false, tc.f)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				if after := req.Header.String(); after != before {
					t.Fatalf("headers changed on error:\n%s\nwas\n%s", after, before)
				}
				return
			}
			for name, want := range tc.want {
				var got []string
				for _, v := range req.Header.PeekAll(name) {
					got = append(got, string(v))
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// Not parallel: testing.AllocsPerRun refuses parallel tests.
func TestHeadersDoNotAllocate(t *testing.T) {
	req := parseRequest(t, benchRequest)
	resp := parseResponse(t, benchResponse)
	remote := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5555}
	var reqCopy fasthttp.Request
	var respCopy fasthttp.Response
	respCopy.Header.DisableNormalizing()
	n := testing.AllocsPerRun(100, func() {
		req.CopyTo(&reqCopy)
		resp.Header.CopyTo(&respCopy.Header)
		if CheckRequest(&reqCopy, Forwarding{}) != nil || StripRequest(&reqCopy) != nil || SetForwarded(&reqCopy, remote, false, Forwarding{}) != nil ||
			StripResponse(&respCopy) != nil {
			t.Fatal("unexpected error")
		}
	})
	if n != 0 {
		t.Fatalf("strip + set forwarded allocate %v times per request", n)
	}
}

const (
	benchRequest = "GET /orders/1 HTTP/1.1\r\nHost: api.example\r\nUser-Agent: bench\r\nAccept: */*\r\n" +
		"Connection: keep-alive\r\nConnection: X-Hop\r\nX-Hop: 1\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n"
	benchResponse = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n" +
		"connection: keep-alive, x-hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Request-Id: abc\r\n"
)

func BenchmarkStripRequest(b *testing.B) {
	req := parseRequest(b, benchRequest)
	var r fasthttp.Request
	b.ReportAllocs()
	for b.Loop() {
		req.CopyTo(&r)
		if err := StripRequest(&r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStripResponse(b *testing.B) {
	resp := parseResponse(b, benchResponse)
	var r fasthttp.Response
	r.Header.DisableNormalizing()
	b.ReportAllocs()
	for b.Loop() {
		resp.Header.CopyTo(&r.Header)
		if err := StripResponse(&r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSetForwarded(b *testing.B) {
	req := parseRequest(b, benchRequest)
	remote := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5555}
	var r fasthttp.Request
	b.ReportAllocs()
	for b.Loop() {
		req.CopyTo(&r)
		if err := SetForwarded(&r, remote, false, Forwarding{}); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzStripAndForward: whatever the header lines, after StripRequest no
// header named by a Connection option (other than the gateway's own) and
// no hop-by-hop header is left, and SetForwarded leaves one
// X-Forwarded-For line ending with the client.
func FuzzStripAndForward(f *testing.F) {
	f.Add("Connection: keep-alive\r\nConnection: X-Two\r\nX-Two: 2\r\n")
	f.Add("connection: x-a,,X-B ,\tHost\r\nx-a: 1\r\nX-B: 2\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n")
	f.Add("Connection: X-Forwarded-For, Content-Length\r\nX-Forwarded-For: " + strings.Repeat("9", 2000) + "\r\n")
	f.Add("Connection: " + manyOptions(40) + "\r\n")
	f.Add("Connection: x-forwarded-for\r\nX-Forwarded-For: " + strings.Repeat("9", 2000) + "\r\n")
	f.Add("X-Forwarded-For: " + strings.Repeat("9", 1000) + "\r\nX-Forwarded-For: 1\r\n")
	f.Add("Keep-Alive: 1\r\nTE: trailers\r\nUpgrade: x\r\nProxy-Authorization: y\r\n")
	remote := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}
	f.Fuzz(func(t *testing.T, lines string) {
		req := &fasthttp.Request{}
		head := "GET / HTTP/1.1\r\nHost: a.example\r\n" + lines + "\r\n"
		if req.Header.Read(bufio.NewReader(strings.NewReader(head))) != nil { // headers only: no body to wait for
			return
		}
		var options []string
		for _, v := range req.Header.PeekAll(fasthttp.HeaderConnection) {
			for _, o := range strings.Split(string(v), ",") {
				if o = strings.Trim(o, " \t"); o != "" && !ownedByGateway([]byte(o)) {
					options = append(options, o)
				}
			}
		}
		check := CheckRequest(req, Forwarding{})
		if err := StripRequest(req); err != nil {
			if len(options) <= MaxConnectionOptions || check != err {
				t.Fatalf("refused %d options: %v (check: %v)", len(options), err, check)
			}
			return
		}
		for _, name := range append(options, hopByHop[:]...) {
			if v := req.Header.Peek(name); len(v) > 0 {
				t.Fatalf("%s left: %q", name, v)
			}
		}
		if err := SetForwarded(req, remote, false, Forwarding{}); err != check {
			t.Fatalf("SetForwarded: %v, CheckRequest: %v", err, check)
		} else if err != nil {
			return
		}
		xff := req.Header.PeekAll("X-Forwarded-For")
		if len(xff) != 1 || !strings.HasSuffix(string(xff[0]), "192.0.2.7") {
			t.Fatalf("X-Forwarded-For lines %q", xff)
		}
	})
}
