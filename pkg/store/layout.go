// Package store is the Redis layout of Sluice's configuration: APIs,
// policies, orgs and keys, the global config version and the changelog, the
// atomic write that keeps them in step (store.go) and the reads (read.go).
// Redis is the source of truth; no other package names its keys.
//
// Every key starts with the environment's namespace (Layout), so several
// environments share one Redis without seeing each other. Every
// configuration key shares the hash tag {cfg}, so one script can write an
// object, bump the version and append to the changelog atomically, on a
// single Redis or on Redis Cluster. Rate-limit and quota counters live
// under a hash tag per API, per key or per org, each named by a counter id
// (counters.go: the whole counter schema). The namespace stays outside the
// braces: it separates environments without changing which keys share a
// slot.
package store

// DefaultNamespace is the namespace of an environment that names none.
const DefaultNamespace = "sluice"

// Layout names the Redis keys of one environment. NS is its namespace
// (validation.Namespace); the zero Layout is DefaultNamespace's. Build one
// per service from its redis.namespace and pass it down.
type Layout struct{ NS string }

// NewLayout returns the layout of namespace ns ("" is DefaultNamespace).
func NewLayout(ns string) Layout { return Layout{NS: ns} }

// Namespace returns the namespace the keys start with.
func (l Layout) Namespace() string {
	if l.NS == "" {
		return DefaultNamespace
	}
	return l.NS
}

// Prefix returns "<ns>:", the start of every key of the environment.
func (l Layout) Prefix() string { return l.Namespace() + ":" }

func (l Layout) cfg(name string) string { return l.Namespace() + ":{cfg}:" + name }

// Configuration keys.

// Version is the global config version (INT).
func (l Layout) Version() string { return l.cfg("version") }

// Changelog holds one entry per version, ID "<version>-0" (STREAM).
func (l Layout) Changelog() string { return l.cfg("changelog") }

// APIs maps api id -> JSON (HASH).
func (l Layout) APIs() string { return l.cfg("apis") }

// Policies maps policy id -> JSON (HASH).
func (l Layout) Policies() string { return l.cfg("policies") }

// Keys maps key hash -> JSON (HASH).
func (l Layout) Keys() string { return l.cfg("keys") }

// KeyIDs maps key id -> key hash (HASH).
func (l Layout) KeyIDs() string { return l.cfg("keyids") }

// Routes maps route key (model.API.RouteKeys) -> api id (HASH).
func (l Layout) Routes() string { return l.cfg("routes") }

// APIRoutes maps api id -> JSON array of its route keys (HASH).
func (l Layout) APIRoutes() string { return l.cfg("apiroutes") }

// Orgs maps org id -> JSON (HASH).
func (l Layout) Orgs() string { return l.cfg("orgs") }

// OrgKeys maps org id -> the number of keys naming it (HASH), kept by the
// atomic write so an org in use cannot be deleted.
func (l Layout) OrgKeys() string { return l.cfg("orgkeys") }

// Audit holds one entry per version: actor, changes, ETags before and
// after (STREAM).
func (l Layout) Audit() string { return l.cfg("audit") }

// Object kinds, as named in changes and on NATS.
const (
	KindAPI    = "api"
	KindPolicy = "policy"
	KindKey    = "key"
	KindOrg    = "org"
)

// Operations.
const (
	OpPut    = "put"
	OpDelete = "delete"
)
