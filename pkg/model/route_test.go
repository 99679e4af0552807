package model

import (
	"slices"
	"testing"
)

// RouteKeys and ListenPathClashes must agree: the store refuses a clash by
// the keys, the admin API explains it with ListenPathClashes.
func TestRouteKeysAgreeWithListenPathClashes(t *testing.T) {
	t.Parallel()
	apis := []API{
		{ID: "a", ListenPath: "/orders/"},
		{ID: "b", ListenPath: "/orders"},
		{ID: "c", ListenPath: "/orders/v2/"},
		{ID: "d", ListenPath: "/orders/", Hosts: []string{"Shop.Example.com"}},
		{ID: "e", ListenPath: "/orders", Hosts: []string{"shop.example.com", "other.example.com"}},
		{ID: "f", ListenPath: "/", Hosts: []string{"other.example.com"}},
		{ID: "g", ListenPath: "/"},
		{ID: "h", ListenPath: "/x/", Hosts: []string{"other.example.com"}},
	}
	for i := range apis {
		for j := range apis {
			if i == j {
				continue
			}
			a, b := apis[i], apis[j]
			t.Run(a.ID+"-"+b.ID, func(t *testing.T) {
				t.Parallel()
				shared := slices.ContainsFunc(a.RouteKeys(), func(k string) bool { return slices.Contains(b.RouteKeys(), k) })
				clash := len(ListenPathClashes([]API{a, b})) > 0
				if shared != clash {
					t.Fatalf("keys %q and %q share a key: %v; ListenPathClashes: %v", a.RouteKeys(), b.RouteKeys(), shared, clash)
				}
			})
		}
	}
}
