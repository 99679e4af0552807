package validation

import (
	"strings"
	"testing"
)

// addrCase is one address and the fragment its error must contain ("" for
// a valid address).
type addrCase struct{ in, err string }

func runAddrCases(t *testing.T, check func(string) error, cases []addrCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			err := check(tc.in)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("%q refused: %v", tc.in, err)
			case tc.err != "" && err == nil:
				t.Fatalf("%q accepted, want an error with %q", tc.in, tc.err)
			case tc.err != "" && !strings.Contains(err.Error(), tc.err):
				t.Fatalf("%q: error %q lacks %q", tc.in, err, tc.err)
			}
		})
	}
}

func TestListenAddr(t *testing.T) {
	t.Parallel()
	runAddrCases(t, ListenAddr, []addrCase{
		{":8080", ""},
		{":0", ""},
		{":65535", ""},
		{"127.0.0.1:9090", ""},
		{"[::1]:9090", ""},
		{"[fe80::1%eth0]:9090", ""},
		{"localhost:80", ""},
		{"gateway-1.internal.example.com.:80", ""},
		{"redis_1:80", ""},
		{":99999", "port 99999 out of range 0-65535"},
		{":65536", "port 65536 out of range 0-65535"},
		{":123456789012345678901234567890", "out of range 0-65535"},
		{":-1", `port "-1" is not a number`},
		{":http", `port "http" is not a number`},
		{":", "port is empty"},
		{"", "empty address"},
		{"8080", "has no port"},
		{"::1:80", "too many colons"},
		{"[::1]x:80", "is not host:port"},
		{"300.1.1.1:80", "last label is a number"},
		{"bad host:80", `character " " is not allowed`},
		{"-a.example:80", "must not start or end with '-'"},
		{"a..b:80", `label "" must have 1-63 characters`},
		{strings.Repeat("a", 64) + ":80", "1-63 characters"},
		{strings.Repeat("a.", 127) + "ab:80", "1-253 characters"},
		{"[::g]:80", "not a valid IP address"},
		{"h\x00:80", `character "\x00" is not allowed`},
		{"bad host:99999", "; port 99999"}, // both problems at once
	})
}

func TestHostPort(t *testing.T) {
	t.Parallel()
	runAddrCases(t, HostPort, []addrCase{
		{"127.0.0.1:6379", ""},
		{"redis:6379", ""},
		{"[::1]:6379", ""},
		{"redis", `"redis" has no port`},
		{":6379", "has no host"},
		{"redis:0", "port 0 out of range 1-65535"},
		{"redis:99999", "port 99999 out of range 1-65535"},
		{"redis:", "port is empty"},
		{"re dis:6379", "not a valid host name"},
	})
}

func TestNATSURLs(t *testing.T) {
	t.Parallel()
	runAddrCases(t, NATSURLs, []addrCase{
		{"nats://127.0.0.1:4222", ""},
		{"nats://nats", ""},
		{"tls://nats.example.com:4443", ""},
		{"ws://127.0.0.1:8080/nats", ""},
		{"WSS://nats.example.com", ""},
		{"nats://user:secret@127.0.0.1:4222", ""},
		{"nats://a:4222, nats://b:4222,nats://c:4222", ""},
		{"", "no server URL"},
		{"garbage", `"garbage": scheme must be nats, tls, ws or wss`},
		{"http://127.0.0.1:4222", "scheme must be nats, tls, ws or wss"},
		{"127.0.0.1:4222", "is not a URL"},
		{"nats://", "has no host"},
		{"nats:opaque", "has no host"},
		{"nats://127.0.0.1:99999", "port 99999 out of range 1-65535"},
		{"nats://127.0.0.1:", "empty port"},
		{"nats://127.0.0.1:4222/path", "has no path"},
		{"nats://127.0.0.1:4222?x=1", "query or fragment"},
		{"nats://127.0.0.1:4222#f", "query or fragment"},
		{"nats://bad_-.:4222", "not a valid host name"},
		{"nats://a:4222,,nats://b:4222", "server 2: empty URL"},
		{"nats://a b:4222", "space or control character"},
		{"nats://a:1,nats://b:99999,ftp://c", "server 2: \"nats://b:99999\": port 99999 out of range 1-65535; server 3:"},
	})
}
