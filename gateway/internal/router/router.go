// Package router matches a request to an API by host and longest listen-path
// prefix. A Table is immutable: the gateway's state builds a new one on every
// config change into the snapshot it swaps in atomically (internal/state);
// matching takes no lock and does not allocate.
//
// Host rules: host names compare case-insensitively; an API host without a
// port matches the request host with any port; an API host with a port
// matches only that port. APIs that name the request's host are searched
// first; APIs without hosts (any host) only when none of those matches.
// Within each group the longest listen path that is a prefix of the path on a
// segment boundary wins ("/orders" matches "/orders" and "/orders/1", not
// "/ordersx").
package router

import (
	"sort"
	"strings"

	"github.com/sluicegw/sluice/pkg/model"
)

// maxHost bounds the host names matched; longer hosts match no host entry.
const maxHost = 256

// Endpoint is an API endpoint compiled for matching.
type Endpoint struct {
	Index   int // position in API.Endpoints
	Methods []string
	Pattern *model.Pattern
	Limit   *model.Limit
}

// Route is one API as the router sees it.
type Route struct {
	// Index is the API's position in the slice given to Build.
	Index int
	API   *model.API
	// Prefix is the listen path without its trailing "/" ("" for "/").
	Prefix    string
	Endpoints []Endpoint
}

// Rest returns the part of path after the route's listen path, always
// starting with "/". path must have been matched to r.
func (r *Route) Rest(path []byte) []byte {
	rest := path[len(r.Prefix):]
	if len(rest) == 0 {
		return slash
	}
	return rest
}

var slash = []byte("/")

// Endpoint returns the first endpoint matching method and rest (the path
// relative to the listen path), or nil.
func (r *Route) Endpoint(method, rest []byte) *Endpoint {
	for i := range r.Endpoints {
		e := &r.Endpoints[i]
		if model.MethodAllowed(e.Methods, method) && e.Pattern.Match(rest) {
			return e
		}
	}
	return nil
}

// Table is an immutable routing table.
type Table struct {
	byHost  map[string][]*Route // lower-case host (with port when the API named one)
	anyHost []*Route
	routes  []*Route
}

// Build compiles a routing table from apis. The caller keeps apis unchanged
// afterwards: routes point into it. Endpoints whose pattern does not compile
// are skipped (APIs are validated before they are stored).
func Build(apis []model.API) *Table {
	t := &Table{byHost: map[string][]*Route{}}
	for i := range apis {
		a := &apis[i]
		r := &Route{Index: i, API: a, Prefix: strings.TrimRight(a.ListenPath, "/")}
		for j, e := range a.Endpoints {
			p, err := model.CompilePattern(e.Path)
			if err != nil {
				continue
			}
			r.Endpoints = append(r.Endpoints, Endpoint{Index: j, Methods: e.Methods, Pattern: p, Limit: e.RateLimit})
		}
		t.routes = append(t.routes, r)
		if len(a.Hosts) == 0 {
			t.anyHost = append(t.anyHost, r)
			continue
		}
		seen := map[string]bool{}
		for _, h := range a.Hosts {
			h = strings.ToLower(h)
			if !seen[h] {
				seen[h] = true
				t.byHost[h] = append(t.byHost[h], r)
			}
		}
	}
	byLen := func(rs []*Route) {
		sort.SliceStable(rs, func(i, j int) bool { return len(rs[i].Prefix) > len(rs[j].Prefix) })
	}
	byLen(t.anyHost)
	for _, rs := range t.byHost {
		byLen(rs)
	}
	return t
}

// Routes returns every route, in the order of the APIs given to Build.
func (t *Table) Routes() []*Route { return t.routes }

// Match returns the route for host and path, or nil.
func (t *Table) Match(host, path []byte) *Route {
	if len(host) <= maxHost && len(t.byHost) > 0 {
		var buf [maxHost]byte
		h := buf[:len(host)]
		for i, c := range host {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			h[i] = c
		}
		if r := longest(t.byHost[string(h)], path); r != nil {
			return r
		}
		if i := portIndex(h); i >= 0 {
			if r := longest(t.byHost[string(h[:i])], path); r != nil {
				return r
			}
		}
	}
	return longest(t.anyHost, path)
}

// portIndex returns the index of the ':' starting the port of host, or -1
// (IPv6 literals are bracketed: "[::1]:80").
func portIndex(h []byte) int {
	for i := len(h) - 1; i >= 0; i-- {
		switch h[i] {
		case ':':
			return i
		case ']':
			return -1
		}
		if h[i] < '0' || h[i] > '9' {
			return -1
		}
	}
	return -1
}

func longest(rs []*Route, path []byte) *Route {
	for _, r := range rs {
		if hasPrefix(path, r.Prefix) {
			return r
		}
	}
	return nil
}

// hasPrefix reports whether prefix is a prefix of path ending on a segment
// boundary.
func hasPrefix(path []byte, prefix string) bool {
	if len(path) < len(prefix) || string(path[:len(prefix)]) != prefix {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}
