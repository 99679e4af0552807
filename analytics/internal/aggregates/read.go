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
	out := map[int64]*rollup.Counters{}
	entries, err := s.rdb.XRange(ctx, s.layout.StreamKey(api, ref.Dim, ref.Name), strconv.FormatInt(from, 10), strconv.FormatInt(to, 10)).Result()
	if err != nil {
		return nil, fmt.Errorf("read usage stream: %w", err)
	}
	for _, e := range entries {
		addEntry(out, e)
	}
	open, err := s.openBuckets(ctx, api, from, to)
	if err != nil {
		return nil, err
	}
	for m, refs := range open {
		if c := refs[ref]; c != nil {
			counterAt(out, m).Merge(c)
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
	rng := &redis.ZRangeBy{Min: strconv.FormatInt(from, 10), Max: strconv.FormatInt(to, 10)}
	pipe := s.rdb.Pipeline()
	open := pipe.ZRangeByScore(ctx, p+"open", rng)
	late := pipe.ZRangeByScore(ctx, p+"late", rng)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read open usage buckets: %w", err)
	}
	type bucket struct{ minute, key string }
	var buckets []bucket
	for _, m := range open.Val() {
		buckets = append(buckets, bucket{m, p + "m:" + m})
	}
	for _, m := range late.Val() {
		buckets = append(buckets, bucket{m, p + "l:" + m})
	}
	if len(buckets) == 0 {
		return nil, nil
	}
	pipe = s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(buckets))
	for i, b := range buckets {
		cmds[i] = pipe.HGetAll(ctx, b.key)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read open usage buckets: %w", err)
	}
	out := make(map[int64]map[Ref]*rollup.Counters, len(buckets))
	for i, b := range buckets {
		t, _ := strconv.ParseInt(b.minute, 10, 64)
		refs := out[t]
		if refs == nil {
			refs = map[Ref]*rollup.Counters{}
			out[t] = refs
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

// Sums returns the counters summed over [from, to] of every key (dim k) or
// endpoint (dim e) of api, or of the API itself (dim a, name "").
func (s *Store) Sums(ctx context.Context, api string, dim byte, from, to int64) (map[string]*rollup.Counters, error) {
	out := map[string]*rollup.Counters{}
	names := []string{""}
	if dim != DimAPI {
		idx := "keys"
		if dim == DimEndpoint {
			idx = "eps"
		}
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
			cmds[i] = pipe.XRange(ctx, s.layout.StreamKey(api, dim, n), strconv.FormatInt(from, 10), strconv.FormatInt(to, 10))
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
	open, err := s.openBuckets(ctx, api, from, to)
	if err != nil {
		return nil, err
	}
	for _, refs := range open {
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
