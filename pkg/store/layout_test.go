package store_test

import (
	"strings"
	"testing"

	"github.com/sluicegw/sluice/pkg/store"
)

// Every key of a layout starts with its namespace, outside the hash tag, so
// the keys of one environment share the slots they share without one.
func TestLayoutKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		layout store.Layout
		ns     string
	}{
		{"zero is the default namespace", store.Layout{}, "sluice"},
		{"default", store.NewLayout(store.DefaultNamespace), "sluice"},
		{"staging", store.NewLayout("staging"), "staging"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := tt.layout
			want := map[string]string{
				l.Version(): tt.ns + ":{cfg}:version", l.Changelog(): tt.ns + ":{cfg}:changelog",
				l.APIs(): tt.ns + ":{cfg}:apis", l.Policies(): tt.ns + ":{cfg}:policies",
				l.Keys(): tt.ns + ":{cfg}:keys", l.KeyIDs(): tt.ns + ":{cfg}:keyids",
				l.Routes(): tt.ns + ":{cfg}:routes", l.APIRoutes(): tt.ns + ":{cfg}:apiroutes",
				l.CounterPrefix("orders"):                              tt.ns + ":{api:orders}:",
				string(l.AppendCounterKey([]byte("x"), "orders", "k")): "x" + tt.ns + ":{api:orders}:k",
			}
			if len(want) != 10 {
				t.Fatalf("two keys have one name: %v", want)
			}
			for got, w := range want {
				if got != w {
					t.Errorf("key %q, want %q", got, w)
				}
				if !strings.HasPrefix(strings.TrimPrefix(got, "x"), l.Prefix()) {
					t.Errorf("key %q does not start with %q", got, l.Prefix())
				}
			}
		})
	}
}

func BenchmarkAppendCounterKey(b *testing.B) {
	l := store.NewLayout("production")
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = l.AppendCounterKey(buf[:0], "orders", "k:0123456789abcdef")
	}
}
