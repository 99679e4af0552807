package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// buildIndexScript replaces the route index with the one given, unless the
// config changed since it was computed. KEYS: version, apis, routes,
// apiroutes. ARGV: the version read, then api id and its route keys (JSON)
// for every API, in id order: where stored APIs already clash (written
// before the index existed), the first in id order owns the key, as the
// gateways' router decides.
var buildIndexScript = redis.NewScript(`
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] or redis.call('HLEN', KEYS[2]) ~= (#ARGV - 1) / 2 then
  return 'RETRY'
end
redis.call('DEL', KEYS[3], KEYS[4])
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i+1])
  for _, rk in ipairs(cjson.decode(ARGV[i+1])) do
    redis.call('HSETNX', KEYS[3], rk, ARGV[i])
  end
end
return 'OK'
`)

// buildRouteIndex builds the index of listen paths from the stored APIs:
// once, when a store written before the index first sees an API write.
func (s *Store) buildRouteIndex(ctx context.Context) error {
	for attempt := 0; attempt < 5; attempt++ {
		var ver *redis.StringCmd
		var apis *redis.MapStringStringCmd
		_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			ver = p.Get(ctx, s.layout.Version())
			apis = p.HGetAll(ctx, s.layout.APIs())
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("store: route index: %w", err)
		}
		v, _ := ver.Int64()
		ids := make([]string, 0, len(apis.Val()))
		for id := range apis.Val() {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		args := []any{strconv.FormatInt(v, 10)}
		for _, id := range ids {
			args = append(args, id, routeKeysJSON([]byte(apis.Val()[id])))
		}
		res, err := buildIndexScript.Run(ctx, s.rdb, []string{s.layout.Version(), s.layout.APIs(), s.layout.Routes(), s.layout.APIRoutes()}, args...).Text()
		if err != nil {
			return fmt.Errorf("store: route index: %w", err)
		}
		if res == "OK" {
			return nil
		}
	}
	return errors.New("store: route index: the config kept changing while it was built; retry the write")
}
