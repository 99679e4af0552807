// Package store is the Redis layout of Sluice's configuration: APIs,
// policies and keys, the global config version and the changelog, and the
// atomic write that keeps them in step. Redis is the source of truth.
//
// Every configuration key shares the hash tag {cfg}, so one script can write
// an object, bump the version and append to the changelog atomically, on a
// single Redis or on Redis Cluster. Rate-limit counters live under a hash tag
// per API (CounterPrefix), so the counters one request touches share a slot.
package store

// Configuration keys.
const (
	VersionKey   = "sluice:{cfg}:version"   // INT: global config version
	ChangelogKey = "sluice:{cfg}:changelog" // STREAM: one entry per version, ID "<version>-0"
	APIsKey      = "sluice:{cfg}:apis"      // HASH: api id -> JSON
	PoliciesKey  = "sluice:{cfg}:policies"  // HASH: policy id -> JSON
	KeysKey      = "sluice:{cfg}:keys"      // HASH: key hash -> JSON
	KeyIDsKey    = "sluice:{cfg}:keyids"    // HASH: key id -> key hash
	RoutesKey    = "sluice:{cfg}:routes"    // HASH: route key (model.API.RouteKeys) -> api id
	APIRoutesKey = "sluice:{cfg}:apiroutes" // HASH: api id -> JSON array of its route keys
)

// Object kinds, as named in changes and on NATS.
const (
	KindAPI    = "api"
	KindPolicy = "policy"
	KindKey    = "key"
)

// Operations.
const (
	OpPut    = "put"
	OpDelete = "delete"
)

// KeyCounterPrefix returns the prefix of the counters of one key (by its
// hash) that count across every API it calls (scope: key):
// "sluice:{key:<hash>}:". They share that key's hash slot, which on Redis
// Cluster is in general not the slot of the API's counters.
func KeyCounterPrefix(keyHash string) string {
	return "sluice:{key:" + keyHash + "}:"
}

// CounterPrefix returns the prefix of every rate-limit and quota counter of
// one API: "sluice:{api:<id>}:". All of them share that API's hash slot.
func CounterPrefix(apiID string) string {
	return "sluice:{api:" + apiID + "}:"
}
