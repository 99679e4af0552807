package aggregates

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/analytics/internal/rollup"
)

// Store reads and writes usage aggregates in Redis.
type Store struct {
	rdb       redis.UniversalClient
	layout    Layout
	dedupTTL  time.Duration
	retention time.Duration
	// hourly is the retention of closed hours.
	hourly time.Duration
	// keyMin is the requests a key makes in a minute to get an entry of
	// its own in that minute (WithKeyMinuteMin).
	keyMin int
	// names are the key names this Store recorded (keynames.go).
	names nameCache
}

// New returns a Store. dedupTTL is how long a message's dedup record lives,
// retention how long closed minutes (and, unless WithHourlyRetention says
// otherwise, closed hours) are kept in streams.
// Its keys are the default namespace's; NewIn names another.
func New(rdb redis.UniversalClient, dedupTTL, retention time.Duration) *Store {
	return NewIn(Layout{}, rdb, dedupTTL, retention)
}

// NewIn returns a Store of the environment whose keys l names.
func NewIn(l Layout, rdb redis.UniversalClient, dedupTTL, retention time.Duration) *Store {
	return &Store{rdb: rdb, layout: l, dedupTTL: dedupTTL, retention: retention, hourly: retention}
}

// WithHourlyRetention sets how long closed hours are kept (at least the
// minutes' retention: aggregation.hourly_retention) and returns s.
func (s *Store) WithHourlyRetention(d time.Duration) *Store {
	s.hourly = max(d, s.retention)
	return s
}

// WithKeyMinuteMin sets the requests a key must make in a minute (of one
// API) for the minute to be kept for it on its own
// (aggregation.key_minute_min_requests); in minutes with fewer, its
// counters are summed into the key rollup.OtherKey and kept per key only
// in its hour. 0 or 1: every key, every minute. It returns s.
func (s *Store) WithKeyMinuteMin(n int) *Store {
	s.keyMin = n
	return s
}

// HourMS is one hourly bucket, in milliseconds.
const HourMS = 3_600_000

// HourOf returns the start of the hour of a Unix ms time.
func HourOf(ms int64) int64 {
	h := ms / HourMS * HourMS
	if ms < 0 && h != ms {
		h -= HourMS
	}
	return h
}

// Layout returns the key names of the Store's environment.
func (s *Store) Layout() Layout { return s.layout }

// Load loads the scripts (again after a Redis restart).
func (s *Store) Load(ctx context.Context) error {
	for _, sc := range []*redis.Script{applyScript, closeScript} {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return fmt.Errorf("load script: %w", err)
		}
	}
	return nil
}

// Result is the outcome of one API batch.
type Result struct {
	Dups []int // positions in the batch's Msgs already recorded; nothing was added
	Late int64 // events of minutes closed already, recorded as corrections
	Err  error
}

// Apply records the batches, one script call per API, all in one pipeline;
// now dates the retention (minutes older than now - retention are only
// counted in the totals). A batch with Dups set must be rebuilt without them
// and applied again.
func (s *Store) Apply(ctx context.Context, batches []*rollup.APIBatch, now time.Time) []Result {
	res := make([]Result, len(batches))
	names := make([]map[string]rollup.KeyName, len(batches))
	for i, b := range batches {
		names[i] = s.names.pending(b)
	}
	defer func() {
		for i, b := range batches {
			if res[i].Err == nil && len(res[i].Dups) == 0 {
				s.names.recorded(b, names[i])
			}
		}
	}()
	for attempt := 0; attempt < 2; attempt++ {
		cmds, err := s.pipelineApply(ctx, batches, names, now)
		if err != nil && isNoScript(err) && attempt == 0 {
			if lerr := s.Load(ctx); lerr == nil {
				continue
			}
		}
		for i, c := range cmds {
			res[i] = parseApply(c)
		}
		if err != nil && len(cmds) == 0 {
			for i := range res {
				res[i].Err = err
			}
		}
		return res
	}
	return res
}

func (s *Store) pipelineApply(ctx context.Context, batches []*rollup.APIBatch, names []map[string]rollup.KeyName, now time.Time) ([]*redis.Cmd, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(batches))
	for i, b := range batches {
		pipe.SAdd(ctx, s.layout.APIs(), b.API)
		p := s.layout.Prefix(b.API)
		cmds[i] = applyScript.EvalSha(ctx, pipe, []string{p + "tot"}, s.applyArgs(p, b, names[i], now)...)
	}
	_, err := pipe.Exec(ctx)
	return cmds, err
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

func parseApply(c *redis.Cmd) Result {
	v, err := c.Int64Slice()
	if err != nil {
		return Result{Err: fmt.Errorf("apply usage: %w", err)}
	}
	if len(v) == 0 {
		return Result{Err: errors.New("apply usage: empty reply")}
	}
	if v[0] == 1 {
		d := make([]int, len(v)-1)
		for i, p := range v[1:] {
			d[i] = int(p) - 1
		}
		return Result{Dups: d}
	}
	if len(v) > 1 {
		return Result{Late: v[1]}
	}
	return Result{}
}

// Field returns the bucket field of a code in a dimension.
func Field(code string, dim byte, name string) string {
	return code + "|" + string(dim) + "|" + name
}

func (s *Store) applyArgs(prefix string, b *rollup.APIBatch, names map[string]rollup.KeyName, now time.Time) []any {
	args := make([]any, 0, 10+len(b.IDs)+4*rollup.NumFields*(1+len(b.Minutes)))
	args = append(args, prefix, s.dedupTTL.Milliseconds(), len(b.IDs))
	for _, id := range b.IDs {
		args = append(args, id)
	}
	args = append(args, now.Add(-s.retention).UnixMilli(), s.retention.Milliseconds(),
		now.Add(-s.hourly).UnixMilli(), s.hourly.Milliseconds())
	args = appendCounters(args, &b.Total, func(code string) string { return code })
	args = append(args, len(b.Minutes))
	for m, mb := range b.Minutes {
		args = append(args, m, mb.API[rollup.FRequests])
		at := len(args)
		args = append(args, 0)
		start := len(args)
		args = appendFields(args, &mb.API, DimAPI, "")
		for e, c := range mb.Endpoints {
			args = appendFields(args, c, DimEndpoint, e)
		}
		args[at] = (len(args) - start) / 2
		args = append(args, keyLog(mb.Keys))
	}
	return appendNames(args, b, names)
}

func appendNames(args []any, b *rollup.APIBatch, names map[string]rollup.KeyName) []any {
	args = append(args, len(names))
	if len(names) == 0 {
		return args
	}
	args = append(args, lastMinute(b))
	for h, n := range names {
		js, _ := json.Marshal(n)
		args = append(args, h, string(js))
	}
	return args
}

func appendCounters(args []any, c *rollup.Counters, name func(string) string) []any {
	at := len(args)
	args = append(args, 0)
	n := 0
	for i, v := range c {
		if v != 0 {
			args = append(args, name(rollup.Codes[i]), v)
			n++
		}
	}
	args[at] = n
	return args
}

func appendFields(args []any, c *rollup.Counters, dim byte, name string) []any {
	for i, v := range c {
		if v != 0 {
			args = append(args, Field(rollup.Codes[i], dim, name), v)
		}
	}
	return args
}

// Closed is one closed API minute.
type Closed struct {
	API    string
	Minute int64 // Unix ms
	Counts rollup.Counters
}

// Close closes the open minutes of api up to cutoff (Unix ms), and the
// hours whose last minute that closes, and returns the API-level rollups
// of the minutes it closed (none when another worker did).
func (s *Store) Close(ctx context.Context, api string, cutoff int64, now time.Time) ([]Closed, error) {
	keys := []string{s.layout.Prefix(api) + "open"}
	v, err := closeScript.Run(ctx, s.rdb, keys, s.layout.Prefix(api), cutoff,
		now.Add(-s.retention).UnixMilli(), s.retention.Milliseconds(),
		now.Add(-s.hourly).UnixMilli(), s.hourly.Milliseconds(), s.keyMin).Slice()
	if err != nil {
		return nil, fmt.Errorf("close usage of %s: %w", api, err)
	}
	var out []Closed
	for i := 0; i+1 < len(v); i += 2 {
		ms, _ := strconv.ParseInt(fmt.Sprint(v[i]), 10, 64)
		c := Closed{API: api, Minute: ms}
		fields, _ := v[i+1].([]any)
		for j := 0; j+1 < len(fields); j += 2 {
			setField(&c.Counts, fmt.Sprint(fields[j]), fmt.Sprint(fields[j+1]))
		}
		out = append(out, c)
	}
	return out, nil
}

func setField(c *rollup.Counters, code, val string) {
	if i := rollup.FieldIndex(code); i >= 0 {
		n, _ := strconv.ParseInt(val, 10, 64)
		c[i] += n
	}
}

// APIs returns the ids of APIs with usage.
func (s *Store) APIs(ctx context.Context) ([]string, error) {
	v, err := s.rdb.SMembers(ctx, s.layout.APIs()).Result()
	if err != nil {
		return nil, fmt.Errorf("list usage apis: %w", err)
	}
	return v, nil
}

// Ping checks Redis.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }
