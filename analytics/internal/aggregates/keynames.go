package aggregates

import (
	"sync"

	"github.com/sluicegw/sluice/analytics/internal/rollup"
)

// maxCachedNames bounds the names a Store remembers; past it, it forgets
// them all and sends each again once.
const maxCachedNames = 1 << 20

// nameCache remembers the key names (id, alias) a Store has recorded, per
// API and key hash, with the hour of the batch that recorded them. A batch
// sends a key's name only when it differs from the one recorded or was
// recorded in an earlier hour: T.."knt" keeps the minute a name was last
// set, and a name untouched for the hourly retention is removed, so an
// hourly refresh keeps the name of a key in use. At 100,000 keys a minute,
// sending every name with every batch cost two Redis commands per event.
// Another worker recording the same key sends it too: names are set, not
// added, so sending one twice is harmless.
type nameCache struct {
	mu sync.Mutex
	m  map[nameKey]sentName
}

type nameKey struct{ api, hash string }

type sentName struct {
	name rollup.KeyName
	hour int64
}

func lastMinute(b *rollup.APIBatch) int64 {
	var last int64
	for m := range b.Minutes {
		last = max(last, m)
	}
	return last
}

// pending returns the names of b still to send.
func (c *nameCache) pending(b *rollup.APIBatch) map[string]rollup.KeyName {
	if len(b.Names) == 0 {
		return nil
	}
	hour := HourOf(lastMinute(b))
	c.mu.Lock()
	defer c.mu.Unlock()
	var out map[string]rollup.KeyName
	for h, n := range b.Names {
		if sent, ok := c.m[nameKey{b.API, h}]; ok && sent.name == n && sent.hour >= hour {
			continue
		}
		if out == nil {
			out = make(map[string]rollup.KeyName, len(b.Names))
		}
		out[h] = n
	}
	return out
}

// recorded notes that Redis has the names sent with b.
func (c *nameCache) recorded(b *rollup.APIBatch, names map[string]rollup.KeyName) {
	if len(names) == 0 {
		return
	}
	hour := HourOf(lastMinute(b))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m)+len(names) > maxCachedNames {
		c.m = make(map[nameKey]sentName, len(names))
	}
	for h, n := range names {
		c.m[nameKey{b.API, h}] = sentName{name: n, hour: hour}
	}
}
