package bench

import (
	"bufio"
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// CommandStats is the call count of each Redis command (INFO
// commandstats). Commands a script runs with redis.call count there too.
type CommandStats map[string]int64

// Stats is one reading of Redis's counters.
type Stats struct {
	Commands CommandStats
	// Reads is total_reads_processed: read events on client connections.
	// On long-lived connections that is one per round trip (a pipeline's
	// commands usually arrive in one read), and, unlike the command counts,
	// it does not count what scripts run inside Redis.
	Reads int64
}

// ReadStats reads INFO stats and commandstats in one call.
func ReadStats(ctx context.Context, rdb *redis.Client) (Stats, error) {
	s, err := rdb.Info(ctx, "stats", "commandstats").Result()
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Commands: ParseCommandStats(s)}
	for _, l := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "total_reads_processed:"); ok {
			st.Reads, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return st, nil
}

// Sub returns what happened between before and s, less the one read of
// the INFO call that took s.
func (s Stats) Sub(before Stats) Delta {
	d := s.Commands.Sub(before.Commands)
	d.RoundTrips = max(s.Reads-before.Reads-1, 0)
	return d
}

// ParseCommandStats parses lines like
// "cmdstat_evalsha:calls=12,usec=30,usec_per_call=2.50,...".
func ParseCommandStats(info string) CommandStats {
	out := CommandStats{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		name, rest, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				out[strings.TrimPrefix(name, "cmdstat_")] = n
			}
		}
	}
	return out
}

// scriptCommands run a server-side script: one round trip each.
var scriptCommands = []string{"evalsha", "eval", "evalsha_ro", "eval_ro", "fcall", "fcall_ro"}

// Delta is what happened between two readings.
type Delta struct {
	Commands   int64            `json:"commands"`    // every command except INFO (the harness's own), including those run by scripts
	Scripts    int64            `json:"scripts"`     // script calls (EVALSHA, EVAL, FCALL...)
	RoundTrips int64            `json:"round_trips"` // client read events (see Stats.Reads)
	ByName     map[string]int64 `json:"by_name"`
}

// Sub returns the calls made between before and s.
func (s CommandStats) Sub(before CommandStats) Delta {
	d := Delta{ByName: map[string]int64{}}
	for name, n := range s {
		if name == "info" {
			continue
		}
		if dn := n - before[name]; dn > 0 {
			d.ByName[name] = dn
			d.Commands += dn
		}
	}
	for _, name := range scriptCommands {
		d.Scripts += d.ByName[name]
	}
	return d
}
