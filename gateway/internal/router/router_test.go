package router

import (
	"testing"

	"github.com/sluicegw/sluice/pkg/model"
)

func testAPIs() []model.API {
	return []model.API{
		{ID: "root", ListenPath: "/"},
		{ID: "orders", ListenPath: "/orders/"},
		{ID: "orders-v2", ListenPath: "/orders/v2"},
		{ID: "shop", ListenPath: "/orders", Hosts: []string{"Shop.Example.com"}},
		{ID: "shop-port", ListenPath: "/", Hosts: []string{"shop.example.com:8443"}},
		{ID: "admin", ListenPath: "/admin", Hosts: []string{"admin.example.com"},
			Endpoints: []model.Endpoint{
				{Methods: []string{"POST"}, Path: "/users/{id}"},
				{Path: "/users/**"},
				{Path: "bad pattern"},
			}},
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	tab := Build(testAPIs())
	cases := []struct {
		host, path, want string
	}{
		{"any.example.com", "/", "root"},
		{"any.example.com", "/ordersx", "root"},
		{"any.example.com", "/orders", "orders"},
		{"any.example.com", "/orders/", "orders"},
		{"any.example.com", "/orders/1", "orders"},
		{"any.example.com", "/orders/v2", "orders-v2"},
		{"any.example.com", "/orders/v2/x", "orders-v2"},
		{"any.example.com", "/orders/v20", "orders"},
		{"shop.example.com", "/orders/1", "shop"},
		{"SHOP.EXAMPLE.COM", "/orders/1", "shop"},
		{"shop.example.com:8080", "/orders/1", "shop"},
		{"shop.example.com:8443", "/orders/1", "shop-port"},
		{"shop.example.com:8443", "/other", "shop-port"},
		{"shop.example.com", "/other", "root"},
		{"admin.example.com", "/admin/x", "admin"},
		{"admin.example.com", "/orders/v2", "orders-v2"},
		{"", "/orders/1", "orders"},
		{"[::1]:8080", "/orders/1", "orders"},
	}
	for _, c := range cases {
		t.Run(c.host+c.path, func(t *testing.T) {
			t.Parallel()
			r := tab.Match([]byte(c.host), []byte(c.path))
			if r == nil || r.API.ID != c.want {
				t.Fatalf("Match(%q, %q) = %v, want %s", c.host, c.path, r, c.want)
			}
		})
	}
}

func TestNoMatch(t *testing.T) {
	t.Parallel()
	tab := Build([]model.API{{ID: "a", ListenPath: "/a"}, {ID: "h", ListenPath: "/", Hosts: []string{"h.example"}}})
	for _, p := range []string{"/", "/b", "/ab"} {
		if r := tab.Match([]byte("x.example"), []byte(p)); r != nil {
			t.Errorf("Match(%q) = %s, want none", p, r.API.ID)
		}
	}
	if r := Build(nil).Match([]byte("x"), []byte("/")); r != nil {
		t.Errorf("empty table matched %s", r.API.ID)
	}
}

func TestRestAndEndpoint(t *testing.T) {
	t.Parallel()
	tab := Build(testAPIs())
	r := tab.Match([]byte("admin.example.com"), []byte("/admin/users/7"))
	if got := string(r.Rest([]byte("/admin/users/7"))); got != "/users/7" {
		t.Fatalf("Rest = %q", got)
	}
	if got := string(r.Rest([]byte("/admin"))); got != "/" {
		t.Fatalf("Rest = %q", got)
	}
	if len(r.Endpoints) != 2 {
		t.Fatalf("endpoints = %d, want 2 (bad pattern skipped)", len(r.Endpoints))
	}
	cases := []struct {
		method, rest string
		want         int
	}{
		{"POST", "/users/7", 0},
		{"GET", "/users/7", 1},
		{"GET", "/users", 1},
		{"GET", "/other", -1},
	}
	for _, c := range cases {
		e := r.Endpoint([]byte(c.method), []byte(c.rest))
		got := -1
		if e != nil {
			got = e.Index
		}
		if got != c.want {
			t.Errorf("Endpoint(%s %s) = %d, want %d", c.method, c.rest, got, c.want)
		}
	}
}

func TestMatchAllocs(t *testing.T) {
	tab := Build(testAPIs())
	host, path := []byte("Shop.Example.com:8080"), []byte("/orders/v2/17")
	if n := testing.AllocsPerRun(100, func() { tab.Match(host, path) }); n != 0 {
		t.Fatalf("Match allocates %v times", n)
	}
}

func BenchmarkMatch(b *testing.B) {
	tab := Build(testAPIs())
	host, path := []byte("Shop.Example.com:8080"), []byte("/orders/v2/17")
	b.ReportAllocs()
	for b.Loop() {
		tab.Match(host, path)
	}
}

func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"shop.example.com", "/orders/1"}, {"", ""}, {"[::1]:80", "/"}, {"a:b:c", "//orders"},
		{"SHOP.EXAMPLE.COM:8443", "/orders/v2"}, {"\xff", "/\x00"},
	} {
		f.Add(s[0], s[1])
	}
	tab := Build(testAPIs())
	f.Fuzz(func(t *testing.T, host, path string) {
		r := tab.Match([]byte(host), []byte(path))
		if r == nil {
			return
		}
		if !hasPrefix([]byte(path), r.Prefix) {
			t.Fatalf("route %s prefix %q does not prefix %q", r.API.ID, r.Prefix, path)
		}
		rest := r.Rest([]byte(path))
		if len(rest) == 0 || rest[0] != '/' {
			t.Fatalf("rest %q does not start with /", rest)
		}
		r.Endpoint([]byte("GET"), rest)
	})
}
