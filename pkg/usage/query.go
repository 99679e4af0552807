package usage

import "time"

// The bodies of the analytics query API (docs/analytics.md, "Query API"),
// shared by the analytics workers that serve them and the clients that
// read them (sluicectl). Fields are only ever added.

// Status is the count of responses by status class.
type Status struct {
	S2xx int64 `json:"2xx"`
	S3xx int64 `json:"3xx"`
	S4xx int64 `json:"4xx"`
	S5xx int64 `json:"5xx"`
}

// Counts is what the query API says of a bucket or a sum of buckets.
// Errors are responses with a 5xx status; limited are requests a rate
// limit or quota refused (counted in their status class too); units the
// sum of the events' units (the cost counted against limits counting
// units, 0 for requests counted as requests); latency percentiles in
// milliseconds, estimated from a fixed histogram.
type Counts struct {
	Requests int64   `json:"requests"`
	Status   Status  `json:"status"`
	Errors   int64   `json:"errors"`
	Limited  int64   `json:"limited"`
	BytesIn  int64   `json:"bytes_in"`
	BytesOut int64   `json:"bytes_out"`
	Units    int64   `json:"units"`
	P50      float64 `json:"p50_ms"`
	P95      float64 `json:"p95_ms"`
	P99      float64 `json:"p99_ms"`
}

// Point is one step of a series (its start, UTC) or the totals of a
// range (at its start).
type Point struct {
	T time.Time `json:"t"`
	Counts
}

// UsageResponse is the body of GET /v1/usage: the series of all APIs, one
// API, one key hash (with its key id and alias) or one endpoint of an API.
type UsageResponse struct {
	API      string    `json:"api,omitempty"`
	Key      string    `json:"key,omitempty"`
	KeyID    string    `json:"key_id,omitempty"`
	KeyAlias string    `json:"key_alias,omitempty"`
	Endpoint string    `json:"endpoint,omitempty"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Step     string    `json:"step"`
	Series   []Point   `json:"series"`
	Totals   Point     `json:"totals"`
}

// TopItem is one consumer in GET /v1/usage/top: an API, a key hash (with
// its key id and alias) or an endpoint (with its API).
type TopItem struct {
	Name     string `json:"name"`
	API      string `json:"api,omitempty"`
	KeyID    string `json:"key_id,omitempty"`
	KeyAlias string `json:"key_alias,omitempty"`
	Counts
}

// TopResponse is the body of GET /v1/usage/top. From and To are the range
// summed: a range read from hourly buckets covers whole hours
// (Granularity "1h"), see docs/analytics.md.
type TopResponse struct {
	By    string    `json:"by"`
	Sort  string    `json:"sort"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Items []TopItem `json:"items"`
	// Granularity is "1m" when the range was summed minute by minute,
	// "1h" when it was read from hourly buckets (added in the version
	// that introduced hourly rollups).
	Granularity string `json:"granularity,omitempty"`
}

// TotalsResponse is the body of GET /v1/usage/totals: running totals of
// an API since its first event, late events included.
type TotalsResponse struct {
	API  string `json:"api"`
	Late int64  `json:"late"`
	Point
}
