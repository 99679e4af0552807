package bench

import (
	"bufio"
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// CommandStats is the call count of each Redis command (INFO commandstats).
type CommandStats map[string]int64

// ReadCommandStats reads INFO commandstats.
func ReadCommandStats(ctx context.Context, rdb *redis.Client) (CommandStats, error) {
	s, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	return ParseCommandStats(s), nil
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
	Commands int64            `json:"commands"` // every command except INFO (the harness's own)
	Scripts  int64            `json:"scripts"`  // script calls (EVALSHA, EVAL, FCALL...)
	ByName   map[string]int64 `json:"by_name"`
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
