package store

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Ping checks that Redis answers: the one server, or every primary of a
// Redis Cluster (a cluster with a dead primary cannot serve every key, so a
// service is not ready on it).
func Ping(ctx context.Context, rdb redis.UniversalClient) error {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return c.Ping(ctx).Err()
		})
	}
	return rdb.Ping(ctx).Err()
}
