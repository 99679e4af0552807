package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
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
	if r.active.process() == nil {
		return gatewayCounters{}
	}
	code, body, err := get(r.active.opsURL+"/metrics", nil)
	if err != nil || code != 200 {
		return gatewayCounters{}
	}
	return parseGatewayMetrics(body)
}

// parseConfigVersion reads sluice_config_version, the config version the
// node has applied.
func parseConfigVersion(text []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "sluice_config_version ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("sluice_config_version %q: %w", v, err)
		}
		return int64(f), nil
	}
	return 0, errors.New("the gateway's /metrics has no sluice_config_version")
}

// gatewayConfigVersion scrapes the config version the gateway applied.
func (r *run) gatewayConfigVersion() (int64, error) {
	if r.gw.process() == nil {
		return 0, errors.New("no gateway")
	}
	code, body, err := get(r.gw.opsURL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("gateway /metrics: status %d", code)
	}
	return parseConfigVersion(body)
}
