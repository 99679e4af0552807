// Package store is the Redis layout of usage aggregates and the scripts
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
// Keys of API a, with T = "sluice:{usage:a}:":
//
//	T+"open"        ZSET   minute (Unix ms) of every open bucket
//	T+"m:<minute>"  HASH   open bucket: "<code>|<dim>|<name>" -> count; dim a (API, no name), k (key hash), e (endpoint)
//	T+"closed"      STRING watermark: minutes <= it are closed; events for them are late
//	T+"l:<minute>"  HASH   correction bucket of a closed minute: its late events, fields as in "m:"; expires with the minute's retention
//	T+"late"        ZSET   minute (Unix ms) of every correction bucket
//	T+"tot"         HASH   running totals of the API by code, plus "late"
//	T+"d:<id>"      STRING dedup record of one message (PX dedup TTL)
//	T+"s"           STREAM closed minutes of the API, entry ID "<minute>-0"
//	T+"k:<hash>"    STREAM closed minutes of one key on this API
//	T+"e:<pattern>" STREAM closed minutes of one endpoint
//	T+"keys"        ZSET   key hash -> last closed minute it appears in
//	T+"eps"         ZSET   endpoint -> last closed minute it appears in
//
// and APIsKey, the set of API ids seen, under its own tag.
package store

// APIsKey is the set of API ids that have usage.
const APIsKey = "sluice:{usage}:apis"

// Prefix returns the key prefix of an API's usage data.
func Prefix(api string) string { return "sluice:{usage:" + api + "}:" }

// Dimensions of a bucket field.
const (
	DimAPI      = 'a'
	DimKey      = 'k'
	DimEndpoint = 'e'
)

// StreamKey returns the stream of a dimension of an API.
func StreamKey(api string, dim byte, name string) string {
	switch dim {
	case DimKey:
		return Prefix(api) + "k:" + name
	case DimEndpoint:
		return Prefix(api) + "e:" + name
	}
	return Prefix(api) + "s"
}
