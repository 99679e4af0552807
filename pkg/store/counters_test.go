package store_test

import (
	"testing"

	"github.com/sluicegw/sluice/pkg/store"
)

// TestCounterKeys pins every counter's Redis key, byte for byte: counters
// are stored data, and a name that changes silently starts its limit
// again from empty on every node (docs/architecture.md, "Counters").
func TestCounterKeys(t *testing.T) {
	t.Parallel()
	const h = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	lay, staging := store.Layout{}, store.NewLayout("staging")
	ep := store.EndpointKeyRatePrefix(3)
	for _, c := range []struct{ got, want string }{
		{store.APIRateCounter, "api"},
		{store.EndpointRateCounter(0), "e:0"},
		{store.EndpointRateCounter(12), "e:12"},
		{ep, "e:3:k:"},
		{store.EndpointKeyRateCounter(ep, h), "e:3:k:" + h},
		{store.LimitByCounter(store.APIRateCounter, []byte("00112233445566778899aabbccddeeff")), "api:by:00112233445566778899aabbccddeeff"},
		{store.LimitByCounter(store.EndpointRateCounter(1), []byte("0f")), "e:1:by:0f"},
		{store.KeyRateCounter(h), "k:" + h},
		{store.PolicyRateCounter("gold", h), "p:gold:k:" + h},
		{store.KeyQuotaCounter(h), "q:k:" + h},
		{store.PolicyQuotaCounter("gold", h), "q:p:gold:k:" + h},
		{store.OrgRateCounter("acme"), "o:acme"},
		{store.OrgQuotaCounter("acme"), "q:o:acme"},

		{lay.CounterPrefix("orders"), "sluice:{api:orders}:"},
		{lay.KeyCounterPrefix(h), "sluice:{key:" + h + "}:"},
		{lay.OrgCounterPrefix("acme"), "sluice:{org:acme}:"},
		{staging.CounterPrefix("orders"), "staging:{api:orders}:"},
		{string(lay.AppendCounterKey(nil, "orders", store.APIRateCounter)), "sluice:{api:orders}:api"},
		{string(lay.AppendCounterKey(nil, "orders", store.PolicyRateCounter("gold", h))), "sluice:{api:orders}:p:gold:k:" + h},
		{string(lay.AppendKeyCounterKey(nil, h, store.KeyQuotaCounter(h))), "sluice:{key:" + h + "}:q:k:" + h},
		{string(lay.AppendOrgCounterKey(nil, "acme", store.OrgQuotaCounter("acme"))), "sluice:{org:acme}:q:o:acme"},
		{string(staging.AppendOrgCounterKey(nil, "acme", store.OrgRateCounter("acme"))), "staging:{org:acme}:o:acme"},
		{string(lay.AppendScopedCounterKey(nil, "orders", "", "", "e:0")), "sluice:{api:orders}:e:0"},
		{string(lay.AppendScopedCounterKey(nil, "orders", h, "", "k:"+h)), "sluice:{key:" + h + "}:k:" + h},
		{string(lay.AppendScopedCounterKey(nil, "orders", h, "acme", "o:acme")), "sluice:{org:acme}:o:acme"},
		{string(lay.AppendScopedCounterKey([]byte("x"), "orders", "", "acme", "q:o:acme")), "xsluice:{org:acme}:q:o:acme"},
	} {
		if c.got != c.want {
			t.Errorf("counter %q, want %q", c.got, c.want)
		}
	}
}

// TestCounterIDAllocations: a counter id built per request costs its one
// string, no more.
func TestCounterIDAllocations(t *testing.T) {
	digest := []byte("00112233445566778899aabbccddeeff")
	ep := store.EndpointKeyRatePrefix(2)
	var s string
	if n := testing.AllocsPerRun(100, func() { s = store.LimitByCounter(store.APIRateCounter, digest) }); n != 1 {
		t.Errorf("LimitByCounter: %v allocations, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { s = store.EndpointKeyRateCounter(ep, "9f86d081884c7d65") }); n != 1 {
		t.Errorf("EndpointKeyRateCounter: %v allocations, want 1", n)
	}
	_ = s
}
