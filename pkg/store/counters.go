package store

import "strconv"

// Counters. The Redis key of a rate-limit or quota counter is its scope's
// prefix, which carries the scope's hash tag, followed by a counter id
// naming the limit within that scope:
//
//	<ns>:{api:<api id>}:<counter id>     an API's counters (CounterPrefix)
//	<ns>:{key:<key hash>}:<counter id>   a key's own, across every API (KeyCounterPrefix)
//	<ns>:{org:<org id>}:<counter id>     an org's, across its keys and APIs (OrgCounterPrefix)
//
// Every counter id is built by the functions below, and nowhere else.
// Both are stored data: a counter whose name changes starts again from
// empty, so the names are pinned by a test (TestCounterKeys) and listed in
// docs/architecture.md. The ids of a key or an org are built once per
// session or snapshot; what a request adds (a per-key endpoint counter, a
// limit_by hash) costs one string.

// CounterPrefix returns the prefix of every rate-limit and quota counter of
// one API: "<ns>:{api:<id>}:". All of them share that API's hash slot.
func (l Layout) CounterPrefix(apiID string) string {
	return string(l.AppendCounterKey(nil, apiID, ""))
}

// AppendCounterKey appends the counter key of an API, CounterPrefix(apiID)
// + counter, to b (no allocation when b has room: the limiter's hot path).
func (l Layout) AppendCounterKey(b []byte, apiID, counter string) []byte {
	b = append(append(b, l.Namespace()...), ":{api:"...)
	return append(append(append(b, apiID...), "}:"...), counter...)
}

// KeyCounterPrefix returns the prefix of the counters of one key (by its
// hash) that count across every API it calls (scope: key):
// "<ns>:{key:<hash>}:". They share that key's hash slot, which on Redis
// Cluster is in general not the slot of the API's counters.
func (l Layout) KeyCounterPrefix(keyHash string) string {
	return string(l.AppendKeyCounterKey(nil, keyHash, ""))
}

// AppendKeyCounterKey appends KeyCounterPrefix(keyHash) + counter to b.
func (l Layout) AppendKeyCounterKey(b []byte, keyHash, counter string) []byte {
	b = append(append(b, l.Namespace()...), ":{key:"...)
	return append(append(append(b, keyHash...), "}:"...), counter...)
}

// OrgCounterPrefix returns the prefix of the counters of one org, counted
// across all of its keys and every API: "<ns>:{org:<id>}:". They share the
// org's hash slot, in general neither a key's nor an API's.
func (l Layout) OrgCounterPrefix(orgID string) string {
	return string(l.AppendOrgCounterKey(nil, orgID, ""))
}

// AppendOrgCounterKey appends OrgCounterPrefix(orgID) + counter to b.
func (l Layout) AppendOrgCounterKey(b []byte, orgID, counter string) []byte {
	b = append(append(b, l.Namespace()...), ":{org:"...)
	return append(append(append(b, orgID...), "}:"...), counter...)
}

// AppendScopedCounterKey appends the key of a counter of the API apiID,
// or, when orgID is set, of that org's own, or else, when keyHash is set,
// of that key's own, to b.
func (l Layout) AppendScopedCounterKey(b []byte, apiID, keyHash, orgID, counter string) []byte {
	switch {
	case orgID != "":
		return l.AppendOrgCounterKey(b, orgID, counter)
	case keyHash != "":
		return l.AppendKeyCounterKey(b, keyHash, counter)
	}
	return l.AppendCounterKey(b, apiID, counter)
}

// Counter ids.

// APIRateCounter is the counter of an API's rate limit shared by every
// caller: "api".
const APIRateCounter = "api"

// EndpointRateCounter is the counter of endpoint i's rate limit (its
// index in the API's endpoints) on a request without a key: "e:<i>".
func EndpointRateCounter(i int) string { return "e:" + strconv.Itoa(i) }

// EndpointKeyRatePrefix is the start of the counter of endpoint i's rate
// limit for one key or token identity, "e:<i>:k:"; EndpointKeyRateCounter
// completes it.
func EndpointKeyRatePrefix(i int) string { return EndpointRateCounter(i) + ":k:" }

// EndpointKeyRateCounter is the counter of an endpoint's rate limit for
// the key (or token identity) hash: prefix (EndpointKeyRatePrefix) + hash,
// "e:<i>:k:<hash>".
func EndpointKeyRateCounter(prefix, hash string) string { return prefix + hash }

// LimitByCounter is the counter of a limit_by rate limit for one set of
// values: base (APIRateCounter or EndpointRateCounter) + ":by:" + digest
// (the hex of the values' hash), "api:by:<digest>", "e:<i>:by:<digest>".
func LimitByCounter(base string, digest []byte) string { return base + ":by:" + string(digest) }

// KeyRateCounter is the counter of a key's own rate limit: "k:<hash>".
func KeyRateCounter(hash string) string { return "k:" + hash }

// PolicyRateCounter is the counter of a policy's rate limit for one key
// (or token identity): "p:<policy>:k:<hash>".
func PolicyRateCounter(policy, hash string) string { return "p:" + policy + ":k:" + hash }

// KeyQuotaCounter is the counter of a key's own quota: "q:k:<hash>".
func KeyQuotaCounter(hash string) string { return "q:k:" + hash }

// PolicyQuotaCounter is the counter of a policy's quota for one key (or
// token identity): "q:p:<policy>:k:<hash>".
func PolicyQuotaCounter(policy, hash string) string { return "q:p:" + policy + ":k:" + hash }

// OrgRateCounter is the counter of an org's rate limit (under the org's
// prefix): "o:<id>".
func OrgRateCounter(orgID string) string { return "o:" + orgID }

// OrgQuotaCounter is the counter of an org's quota (under the org's
// prefix): "q:o:<id>".
func OrgQuotaCounter(orgID string) string { return "q:o:" + orgID }
