package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// wrkScript makes wrk print its summary as one JSON line, with latencies in
// microseconds.
const wrkScript = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "SLUICE_WRK {\"requests\":%d,\"duration_us\":%d,\"connect\":%d,\"read\":%d,\"write\":%d,\"timeout\":%d,\"status\":%d," ..
    "\"p50\":%d,\"p90\":%d,\"p99\":%d,\"p999\":%d,\"max\":%d}\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max))
end
`

// WrkResult is wrk's summary of one run.
type WrkResult struct {
	Requests   int64 `json:"requests"`
	DurationUS int64 `json:"duration_us"`
	Connect    int64 `json:"connect"`
	Read       int64 `json:"read"`
	Write      int64 `json:"write"`
	Timeout    int64 `json:"timeout"`
	Status     int64 `json:"status"` // answers that were not 2xx/3xx
	P50        int64 `json:"p50"`
	P90        int64 `json:"p90"`
	P99        int64 `json:"p99"`
	P999       int64 `json:"p999"`
	Max        int64 `json:"max"`
	// CPU is the user + system time wrk used, in seconds.
	CPU float64 `json:"-"`
}

// Errors counts transport errors and timeouts.
func (w *WrkResult) Errors() int64 { return w.Connect + w.Read + w.Write + w.Timeout }

// WrkPath returns the path of wrk, or "" when it is not installed.
func WrkPath() string {
	p, err := exec.LookPath("wrk")
	if err != nil {
		return ""
	}
	return p
}

// RunWrk runs wrk against l.URL for l.Duration with l.Concurrency
// connections over threads threads. The Lua script goes into dir.
func RunWrk(ctx context.Context, wrk, dir string, threads int, l Load) (*WrkResult, error) {
	script := filepath.Join(dir, "wrk-report.lua")
	if err := os.WriteFile(script, []byte(wrkScript), 0o644); err != nil {
		return nil, err
	}
	threads = max(1, min(threads, l.Concurrency))
	secs := max(1, int(l.Duration.Round(time.Second)/time.Second))
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(l.Concurrency),
		"-d", strconv.Itoa(secs) + "s", "--timeout", "5s", "-s", script}
	for _, h := range l.Headers {
		args = append(args, "-H", h[0]+": "+h[1])
	}
	args = append(args, l.URL)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wrk, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("wrk: %w: %s", err, strings.TrimSpace(out.String()))
	}
	res, err := ParseWrk(out.Bytes())
	if err == nil && cmd.ProcessState != nil {
		res.CPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	}
	return res, err
}

// ParseWrk reads the summary line the report script prints.
func ParseWrk(out []byte) (*WrkResult, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "SLUICE_WRK ")
		if !ok {
			continue
		}
		var r WrkResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("wrk summary %q: %w", line, err)
		}
		return &r, nil
	}
	return nil, fmt.Errorf("wrk printed no summary: %s", bytes.TrimSpace(out))
}
