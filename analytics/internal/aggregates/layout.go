// Package aggregates is the Redis layout of usage aggregates and the scripts
// that write them.
//
// Every key of one API shares the hash tag {usage:<api>}, so the script that
// adds a batch (dedup records, bucket increments, running totals) and the
// script that closes a minute (bucket to streams, watermark) each touch one
// slot, on a single Redis or on Redis Cluster. A fetched batch holding
// several APIs becomes one script call per API, sent in one pipeline; each
// message belongs to exactly one API, so each message is still recorded in
// one atomic step. A per-API tag (rather than one tag for all usage) lets a
// cluster spread APIs over its shards.
//
// Every key starts with the environment's namespace ns (Layout), outside
// the hash tag. Keys of API a, with T = Layout.Prefix(a) = "<ns>:{usage:a}:":
//
//	T+"open"        ZSET   minute (Unix ms) of every open bucket
//	T+"m:<minute>"  HASH   open bucket: "<code>|<dim>|<name>" -> count; dim a (API, no name), e (endpoint); k (key hash) in l:, hm:, hl:
//	T+"mk:<minute>" STRING key log of an open minute: one record per key and applied batch (keylog.go)
//	T+"closed"      STRING watermark: minutes <= it are closed; events for them are late
//	T+"l:<minute>"  HASH   correction bucket of a closed minute: its late events, fields as in "m:"; expires with the minute's retention
//	T+"late"        ZSET   minute (Unix ms) of every correction bucket
//	T+"tot"         HASH   running totals of the API by code, plus "late"
//	T+"d:<id>"      STRING dedup record of one message (PX dedup TTL)
//	T+"s"           STREAM closed minutes of the API, entry ID "<minute>-0"
//	T+"k:<hash>"    STREAM closed minutes of one key on this API; "k:~other" sums the keys below key_minute_min_requests
//	T+"e:<pattern>" STREAM closed minutes of one endpoint
//	T+"keys"        ZSET   key hash -> last closed minute it appears in
//	T+"eps"         ZSET   endpoint -> last closed minute it appears in
//	T+"kn"          HASH   key hash -> its name, JSON {"id","alias"} (usage event key_id, key_alias)
//	T+"knt"         ZSET   key hash -> last minute its name was set; names older than the hourly retention are removed
//	T+"hm:<hour>"   HASH   open hour: the sum of its closed minutes (and their late events), fields as in "m:"
//	T+"hopen"       ZSET   hour (Unix ms) of every open hour bucket
//	T+"hl:<hour>"   HASH   hourly correction bucket of a closed hour; expires with the hour's retention
//	T+"hlate"       ZSET   hour (Unix ms) of every hourly correction bucket
//	T+"H"           STREAM closed hours of the API, entry ID "<hour>-0"
//	T+"hk:<hash>"   STREAM closed hours of one key on this API
//	T+"he:<pattern>" STREAM closed hours of one endpoint
//	T+"hkeys"       ZSET   key hash -> last closed hour it appears in
//	T+"heps"        ZSET   endpoint -> last closed hour it appears in
//
// An hour is closed once its last minute is: the close script that closes
// that minute moves the hour's bucket to the hourly streams. Minutes and
// hours have their own retention (aggregation.retention and
// aggregation.hourly_retention).
//
// and Layout.APIs, "<ns>:{usage}:apis", the set of API ids seen, under its
// own tag.
package aggregates

import "github.com/sluicegw/sluice/pkg/store"

// Layout names the usage keys of one environment: NS is its namespace
// (redis.namespace); the zero Layout is the default namespace's.
type Layout struct{ NS string }

// NewLayout returns the usage layout of the environment whose config keys
// l names (the same namespace).
func NewLayout(l store.Layout) Layout { return Layout{NS: l.NS} }

func (l Layout) ns() string { return store.Layout{NS: l.NS}.Namespace() }

// APIs is the set of API ids that have usage.
func (l Layout) APIs() string { return l.ns() + ":{usage}:apis" }

// Prefix returns the key prefix of an API's usage data.
func (l Layout) Prefix(api string) string { return l.ns() + ":{usage:" + api + "}:" }

// Dimensions of a bucket field.
const (
	DimAPI      = 'a'
	DimKey      = 'k'
	DimEndpoint = 'e'
)

// StreamKey returns the stream of a dimension of an API.
func (l Layout) StreamKey(api string, dim byte, name string) string {
	switch dim {
	case DimKey:
		return l.Prefix(api) + "k:" + name
	case DimEndpoint:
		return l.Prefix(api) + "e:" + name
	}
	return l.Prefix(api) + "s"
}

// HourStreamKey returns the hourly stream of a dimension of an API.
func (l Layout) HourStreamKey(api string, dim byte, name string) string {
	switch dim {
	case DimKey:
		return l.Prefix(api) + "hk:" + name
	case DimEndpoint:
		return l.Prefix(api) + "he:" + name
	}
	return l.Prefix(api) + "H"
}
