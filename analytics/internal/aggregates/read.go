package aggregates

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/analytics/internal/rollup"
)

// Ref names one series: a dimension of an API and, for keys and
// endpoints, its name.
type Ref struct {
	Dim  byte
	Name string
}

// Series returns the per-minute counters of one series of api with a
// minute in [from, to] (Unix ms): closed minutes from the stream plus their
// corrections (late events), open ones from their buckets.
func (s *Store) Series(ctx context.Context, api string, ref Ref, from, to int64) (map[int64]*rollup.Counters, error) {
	return s.series(ctx, s.layout.StreamKey(api, ref.Dim, ref.Name), ref, from, to, func() (map[int64]map[Ref]*rollup.Counters, error) {
		return s.openBuckets(ctx, api, from, to)
	})
}

// HourSeries returns the hourly counters of one series of api with an
// hour in [from, to] (hour starts, Unix ms): closed hours from the hourly
// stream plus their corrections, open hours from their hourly bucket (the
// hour's closed minutes) plus their open minutes.
func (s *Store) HourSeries(ctx context.Context, api string, ref Ref, from, to int64) (map[int64]*rollup.Counters, error) {
	return s.series(ctx, s.layout.HourStreamKey(api, ref.Dim, ref.Name), ref, from, to, func() (map[int64]map[Ref]*rollup.Counters, error) {
		return s.openHours(ctx, api, from, to)
	})
}

func (s *Store) series(ctx context.Context, stream string, ref Ref, from, to int64, open func() (map[int64]map[Ref]*rollup.Counters, error)) (map[int64]*rollup.Counters, error) {
	out := map[int64]*rollup.Counters{}
	entries, err := s.rdb.XRange(ctx, stream, strconv.FormatInt(from, 10), strconv.FormatInt(to, 10)).Result()
	if err != nil {
		return nil, fmt.Errorf("read usage stream: %w", err)
	}
	for _, e := range entries {
		addEntry(out, e)
	}
	buckets, err := open()
	if err != nil {
		return nil, err
	}
	for t, refs := range buckets {
		if c := refs[ref]; c != nil {
			counterAt(out, t).Merge(c)
		}
	}
	return out, nil
}

func addEntry(out map[int64]*rollup.Counters, e redis.XMessage) {
	ms, _, _ := strings.Cut(e.ID, "-")
	m, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return
	}
	c := counterAt(out, m)
	for k, v := range e.Values {
		setField(c, k, fmt.Sprint(v))
	}
}

func counterAt(m map[int64]*rollup.Counters, t int64) *rollup.Counters {
	c := m[t]
	if c == nil {
		c = new(rollup.Counters)
		m[t] = c
	}
	return c
}

// openBuckets reads what is not in the streams for minutes in [from, to]:
// the open buckets of api and the correction buckets of its closed minutes,
// summed per minute.
func (s *Store) openBuckets(ctx context.Context, api string, from, to int64) (map[int64]map[Ref]*rollup.Counters, error) {
	p := s.layout.Prefix(api)
	return s.readBuckets(ctx, []bucketSet{{p + "open", p + "m:", p + "mk:"}, {p + "late", p + "l:", ""}}, from, to, nil)
}

// openHours reads what is not in the hourly streams for hours in [from,
// to]: the open hourly buckets (closed minutes of open hours), the hourly
// corrections of closed hours, and the open minute buckets of those hours,
// summed per hour. A minute's correction bucket is in its hour already.
func (s *Store) openHours(ctx context.Context, api string, from, to int64) (map[int64]map[Ref]*rollup.Counters, error) {
	p := s.layout.Prefix(api)
	sets := []bucketSet{{p + "hopen", p + "hm:", ""}, {p + "hlate", p + "hl:", ""}, {p + "open", p + "m:", p + "mk:"}}
	return s.readBuckets(ctx, sets, from, to+HourMS-1, HourOf)
}

// bucketSet is an index (ZSET of bucket times), the prefix of its buckets
// (HASHes named prefix + time) and, for open minutes, of their key logs
// (STRINGs named log + time, keylog.go).
type bucketSet struct{ index, prefix, log string }

// readBuckets sums the buckets of sets with a time in [from, to], per
// fold(time) (per time when fold is nil) and series.
func (s *Store) readBuckets(ctx context.Context, sets []bucketSet, from, to int64, fold func(int64) int64) (map[int64]map[Ref]*rollup.Counters, error) {
	rng := &redis.ZRangeBy{Min: strconv.FormatInt(from, 10), Max: strconv.FormatInt(to, 10)}
	pipe := s.rdb.Pipeline()
	idx := make([]*redis.StringSliceCmd, len(sets))
	for i, set := range sets {
		idx[i] = pipe.ZRangeByScore(ctx, set.index, rng)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read open usage buckets: %w", err)
	}
	type bucket struct{ t, key, log string }
	var buckets []bucket
	for i, set := range sets {
		for _, t := range idx[i].Val() {
			b := bucket{t: t, key: set.prefix + t}
			if set.log != "" {
				b.log = set.log + t
			}
			buckets = append(buckets, b)
		}
	}
	if len(buckets) == 0 {
		return nil, nil
	}
	pipe = s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(buckets))
	logs := make([]*redis.StringCmd, len(buckets))
	for i, b := range buckets {
		cmds[i] = pipe.HGetAll(ctx, b.key)
		if b.log != "" {
			logs[i] = pipe.Get(ctx, b.log)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("read open usage buckets: %w", err)
	}
	for _, c := range logs {
		if c != nil && c.Err() != nil && c.Err() != redis.Nil {
			return nil, fmt.Errorf("read open usage buckets: %w", c.Err())
		}
	}
	out := make(map[int64]map[Ref]*rollup.Counters, len(buckets))
	for i, b := range buckets {
		t, _ := strconv.ParseInt(b.t, 10, 64)
		if fold != nil {
			t = fold(t)
		}
		refs := out[t]
		if refs == nil {
			refs = map[Ref]*rollup.Counters{}
			out[t] = refs
		}
		if logs[i] != nil {
			err := addKeyLog(logs[i].Val(), func(key string) *rollup.Counters {
				r := Ref{Dim: DimKey, Name: key}
				if refs[r] == nil {
					refs[r] = new(rollup.Counters)
				}
				return refs[r]
			})
			if err != nil {
				return nil, fmt.Errorf("read key log %s: %w", b.log, err)
			}
		}
		for f, v := range cmds[i].Val() {
			code, rest, ok1 := strings.Cut(f, "|")
			dim, name, ok2 := strings.Cut(rest, "|")
			if !ok1 || !ok2 || len(dim) != 1 {
				continue
			}
			r := Ref{Dim: dim[0], Name: name}
			c := refs[r]
			if c == nil {
				c = new(rollup.Counters)
				refs[r] = c
			}
			setField(c, code, v)
		}
	}
	return out, nil
}

// Sums returns the counters summed over the minutes in [from, to] of every
// key (dim k) or endpoint (dim e) of api, or of the API itself (dim a,
// name "").
func (s *Store) Sums(ctx context.Context, api string, dim byte, from, to int64) (map[string]*rollup.Counters, error) {
	idx := map[byte]string{DimKey: "keys", DimEndpoint: "eps"}[dim]
	return s.sums(ctx, api, dim, idx, s.layout.StreamKey, from, to, func() (map[int64]map[Ref]*rollup.Counters, error) {
		return s.openBuckets(ctx, api, from, to)
	})
}

// HourSums is Sums over the whole hours in [from, to] (hour starts), read
// from the hourly buckets.
func (s *Store) HourSums(ctx context.Context, api string, dim byte, from, to int64) (map[string]*rollup.Counters, error) {
	idx := map[byte]string{DimKey: "hkeys", DimEndpoint: "heps"}[dim]
	return s.sums(ctx, api, dim, idx, s.layout.HourStreamKey, from, to, func() (map[int64]map[Ref]*rollup.Counters, error) {
		return s.openHours(ctx, api, from, to)
	})
}

func (s *Store) sums(ctx context.Context, api string, dim byte, idx string, stream func(string, byte, string) string,
	from, to int64, open func() (map[int64]map[Ref]*rollup.Counters, error)) (map[string]*rollup.Counters, error) {
	out := map[string]*rollup.Counters{}
	names := []string{""}
	if dim != DimAPI {
		var err error
		names, err = s.rdb.ZRangeByScore(ctx, s.layout.Prefix(api)+idx, &redis.ZRangeBy{
			Min: strconv.FormatInt(from, 10), Max: "+inf",
		}).Result()
		if err != nil {
			return nil, fmt.Errorf("read usage index: %w", err)
		}
	}
	if len(names) > 0 {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.XMessageSliceCmd, len(names))
		for i, n := range names {
			cmds[i] = pipe.XRange(ctx, stream(api, dim, n), strconv.FormatInt(from, 10), strconv.FormatInt(to, 10))
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return nil, fmt.Errorf("read usage streams: %w", err)
		}
		for i, n := range names {
			sum := map[int64]*rollup.Counters{}
			for _, e := range cmds[i].Val() {
				addEntry(sum, e)
			}
			for _, c := range sum {
				counterOf(out, n).Merge(c)
			}
		}
	}
	buckets, err := open()
	if err != nil {
		return nil, err
	}
	for _, refs := range buckets {
		for r, c := range refs {
			if r.Dim == dim {
				counterOf(out, r.Name).Merge(c)
			}
		}
	}
	for n, c := range out {
		if c[rollup.FRequests] == 0 {
			delete(out, n)
		}
	}
	return out, nil
}

func counterOf(m map[string]*rollup.Counters, n string) *rollup.Counters {
	c := m[n]
	if c == nil {
		c = new(rollup.Counters)
		m[n] = c
	}
	return c
}

// Totals returns the running totals of api and its late event count.
func (s *Store) Totals(ctx context.Context, api string) (rollup.Counters, int64, error) {
	var c rollup.Counters
	v, err := s.rdb.HGetAll(ctx, s.layout.Prefix(api)+"tot").Result()
	if err != nil {
		return c, 0, fmt.Errorf("read usage totals: %w", err)
	}
	for k, val := range v {
		setField(&c, k, val)
	}
	late, _ := strconv.ParseInt(v["late"], 10, 64)
	return c, late, nil
}

// Names returns the names (key id and alias) of key hashes, looked up in
// the usage of every API in apis; a hash without a name is left out.
func (s *Store) Names(ctx context.Context, apis, hashes []string) (map[string]rollup.KeyName, error) {
	out := map[string]rollup.KeyName{}
	if len(apis) == 0 || len(hashes) == 0 {
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, 0, len(apis)*len(hashes))
	for _, api := range apis {
		for _, h := range hashes {
			cmds = append(cmds, pipe.HGet(ctx, s.layout.Prefix(api)+"kn", h))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("read key names: %w", err)
	}
	for i, c := range cmds {
		h := hashes[i%len(hashes)]
		if _, done := out[h]; done || c.Err() != nil {
			continue
		}
		var n rollup.KeyName
		if json.Unmarshal([]byte(c.Val()), &n) == nil {
			out[h] = n
		}
	}
	return out, nil
}
