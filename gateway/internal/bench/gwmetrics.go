package bench

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// gatewayCounters are the gateway's own counts that tell whether a scenario
// measured what it meant to: limit decisions taken without Redis (the
// fallback limiter after store errors) and store errors.
type gatewayCounters struct {
	Fallback    float64 `json:"fallback_decisions"`
	StoreErrors float64 `json:"store_errors"`
	Decisions   float64 `json:"decisions"`
}

// parseGatewayMetrics reads the counters from a Prometheus text exposition.
// Missing metrics read as zero.
func parseGatewayMetrics(text []byte) gatewayCounters {
	var c gatewayCounters
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, "sluice_limit_decisions_total{"):
			c.Decisions += v
			if strings.Contains(line, `source="fallback"`) {
				c.Fallback += v
			}
		case strings.HasPrefix(line, "sluice_limit_store_errors_total"):
			c.StoreErrors += v
		}
	}
	return c
}

func (c gatewayCounters) sub(b gatewayCounters) gatewayCounters {
	return gatewayCounters{Fallback: c.Fallback - b.Fallback, StoreErrors: c.StoreErrors - b.StoreErrors, Decisions: c.Decisions - b.Decisions}
}

// gatewayMetrics scrapes the gateway's /metrics; zero counters when it
// cannot.
func (r *run) gatewayMetrics() gatewayCounters {
	if r.opsURL == "" {
		return gatewayCounters{}
	}
	code, body, err := get(r.opsURL+"/metrics", nil)
	if err != nil || code != 200 {
		return gatewayCounters{}
	}
	return parseGatewayMetrics(body)
}
