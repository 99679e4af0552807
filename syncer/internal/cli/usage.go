package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/usage"
)

// point is one bucket of GET /v1/usage (the analytics worker's
// rollup.Point).
type point struct {
	T        time.Time `json:"t"`
	Requests int64     `json:"requests"`
	Status   struct {
		S2xx int64 `json:"2xx"`
		S3xx int64 `json:"3xx"`
		S4xx int64 `json:"4xx"`
		S5xx int64 `json:"5xx"`
	} `json:"status"`
	Errors   int64   `json:"errors"`
	Limited  int64   `json:"limited"`
	BytesIn  int64   `json:"bytes_in"`
	BytesOut int64   `json:"bytes_out"`
	P50      float64 `json:"p50_ms"`
	P95      float64 `json:"p95_ms"`
	P99      float64 `json:"p99_ms"`
}

func cmdUsage(ctx context.Context, r *run, args []string) error {
	fs := r.flagSet("usage", "", "Show requests per step (counts by status class, limited, bytes, latency percentiles) from the analytics query API (GET /v1/usage), then the top consumers over the same range (GET /v1/usage/top).")
	fs.StringVar(&r.g.analytics, "analytics", r.g.analytics, "analytics query API address (env SLUICE_ANALYTICS_URL)")
	api := fs.String("api", "", "only this API id")
	key := fs.String("key", "", "only this key hash")
	from := fs.String("from", "", "start: RFC 3339, Unix seconds or a duration before now like -1h (default: one hour before --to)")
	to := fs.String("to", "", "end: RFC 3339, Unix seconds, now or -duration (default now)")
	step := fs.String("step", "1m", "bucket size: 1m, 1h or 1d")
	top := fs.String("top", "key", "top consumers by key, api or endpoint; none to skip")
	limit := fs.Int("limit", 10, "how many top consumers")
	if _, err := r.parse(fs, args, 0, 0); err != nil {
		return err
	}
	switch *step {
	case "1m", "1h", "1d":
	default:
		return usageErrorf("usage: --step %q: use 1m, 1h or 1d", *step)
	}
	switch *top {
	case "key", "api", "endpoint", "none":
	default:
		return usageErrorf("usage: --top %q: use key, api, endpoint or none", *top)
	}
	c, err := newClient(r.g.analytics, r.g.token, r.env.HTTPClient)
	if err != nil {
		return err
	}
	q := url.Values{"step": {*step}}
	for k, v := range map[string]string{"api": *api, "key": *key, "from": *from, "to": *to} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var series json.RawMessage
	if _, err := c.getJSON(ctx, "/v1/usage?"+q.Encode(), &series); err != nil {
		return err
	}
	var topRaw json.RawMessage
	if *top != "none" {
		tq := url.Values{"by": {*top}, "limit": {strconv.Itoa(*limit)}}
		for _, k := range []string{"from", "to"} {
			if v := q.Get(k); v != "" {
				tq.Set(k, v)
			}
		}
		if _, err := c.getJSON(ctx, "/v1/usage/top?"+tq.Encode(), &topRaw); err != nil {
			return err
		}
	}
	if r.g.output == "json" {
		out := map[string]json.RawMessage{"usage": series}
		if topRaw != nil {
			out["top"] = topRaw
		}
		return printJSON(r.env.Stdout, out)
	}
	if err := printSeries(r.env.Stdout, series); err != nil {
		return err
	}
	if topRaw == nil {
		return nil
	}
	fmt.Fprintf(r.env.Stdout, "\ntop by %s:\n", *top)
	return printTop(r.env.Stdout, topRaw)
}

// listIn returns the list a query answer holds: the answer itself when it
// is a list, else its first list field among names.
func listIn(raw json.RawMessage, names ...string) ([]json.RawMessage, error) {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil {
		return list, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("decode usage answer: %w", err)
	}
	for _, n := range names {
		if v, ok := obj[n]; ok && json.Unmarshal(v, &list) == nil {
			return list, nil
		}
	}
	return nil, fmt.Errorf("decode usage answer: no %s list in it", strings.Join(names, " or "))
}

func printSeries(w io.Writer, raw json.RawMessage) error {
	items, err := listIn(raw, "points", "series", "items")
	if err != nil {
		return err
	}
	rows := make([][]string, 0, len(items))
	for _, it := range items {
		var p point
		if err := json.Unmarshal(it, &p); err != nil {
			return fmt.Errorf("decode usage point: %w", err)
		}
		i := strconv.FormatInt
		f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
		rows = append(rows, []string{p.T.UTC().Format(time.RFC3339), i(p.Requests, 10),
			i(p.Status.S2xx, 10), i(p.Status.S3xx, 10), i(p.Status.S4xx, 10), i(p.Status.S5xx, 10),
			i(p.Limited, 10), i(p.BytesIn, 10), i(p.BytesOut, 10), f(p.P50), f(p.P95), f(p.P99)})
	}
	return table(w, []string{"TIME", "REQUESTS", "2XX", "3XX", "4XX", "5XX", "LIMITED", "BYTES IN", "BYTES OUT", "P50 MS", "P95 MS", "P99 MS"}, rows)
}

// printTop writes the top consumers as a table whose columns are the
// fields of the entries (nested objects flattened as a.b), known ones first.
func printTop(w io.Writer, raw json.RawMessage) error {
	items, err := listIn(raw, "items", "top")
	if err != nil {
		return err
	}
	var flat []map[string]string
	cols := map[string]bool{}
	for _, it := range items {
		var v any
		if err := json.Unmarshal(it, &v); err != nil {
			return fmt.Errorf("decode top entry: %w", err)
		}
		m := map[string]string{}
		flattenValue(m, "", v)
		for k := range m {
			cols[k] = true
		}
		flat = append(flat, m)
	}
	order := map[string]int{"id": 1, "key": 2, "api": 3, "endpoint": 4, "requests": 5, "errors": 6, "limited": 7}
	header := make([]string, 0, len(cols))
	for k := range cols {
		header = append(header, k)
	}
	sort.Slice(header, func(i, j int) bool {
		oi, oj := order[header[i]], order[header[j]]
		if oi == 0 {
			oi = 100
		}
		if oj == 0 {
			oj = 100
		}
		if oi != oj {
			return oi < oj
		}
		return header[i] < header[j]
	})
	rows := make([][]string, len(flat))
	for i, m := range flat {
		for _, h := range header {
			rows[i] = append(rows[i], m[h])
		}
	}
	upper := make([]string, len(header))
	for i, h := range header {
		upper[i] = strings.ToUpper(strings.ReplaceAll(h, "_", " "))
	}
	return table(w, upper, rows)
}

func flattenValue(out map[string]string, path string, v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			p := k
			if path != "" {
				p = path + "." + k
			}
			flattenValue(out, p, c)
		}
	case nil:
	case string:
		out[path] = t
	default:
		b, _ := json.Marshal(t)
		out[path] = string(b)
	}
}

func cmdUsageTail(ctx context.Context, r *run, args []string) error {
	fs := r.flagSet("usage tail", "", "Print usage events live as gateway nodes publish them (core NATS subscription to sluice.usage.<api>, or every API). One line per event; -o json prints the events as NDJSON.")
	fs.StringVar(&r.g.nats, "nats", r.g.nats, "NATS server URL (env SLUICE_NATS_URL)")
	api := fs.String("api", "", "only this API id")
	count := fs.Int("count", 0, "stop after this many events (0: until interrupted)")
	if _, err := r.parse(fs, args, 0, 0); err != nil {
		return err
	}
	subject := bus.UsageWildcard
	if *api != "" {
		if !model.ValidID(*api) {
			return usageErrorf("usage tail: --api %q is not a valid API id", *api)
		}
		subject = bus.UsageSubject(*api)
	}
	nc, err := nats.Connect(r.g.nats, nats.Name("sluicectl usage tail"), nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", r.g.nats, err)
	}
	defer nc.Close()
	msgs := make(chan *nats.Msg, 1024)
	sub, err := nc.ChanSubscribe(subject, msgs)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("subscribe %s: %w", subject, err)
	}
	fmt.Fprintf(r.env.Stderr, "listening on %s (Ctrl-C to stop)\n", subject)
	seen := 0
	errDone := errors.New("done")
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-msgs:
			if v := m.Header.Get(usage.HeaderVersion); v != "" && v != usage.Version {
				fmt.Fprintf(r.env.Stderr, "skipping a batch of usage encoding version %s (this sluicectl reads %s)\n", v, usage.Version)
				continue
			}
			err := usage.DecodeBatch(m.Data, func(e *usage.Event) error {
				if err := r.printEvent(e); err != nil {
					return err
				}
				seen++
				if *count > 0 && seen >= *count {
					return errDone
				}
				return nil
			})
			if errors.Is(err, errDone) {
				return nil
			}
			if err != nil {
				fmt.Fprintf(r.env.Stderr, "bad batch on %s: %v\n", m.Subject, err)
			}
		}
	}
}

func (r *run) printEvent(e *usage.Event) error {
	if r.g.output == "json" {
		_, err := r.env.Stdout.Write(usage.AppendJSON(nil, e))
		return err
	}
	key := e.KeyHash
	if len(key) > 12 {
		key = key[:12]
	}
	if key == "" {
		key = "-"
	}
	line := fmt.Sprintf("%s %-12s %-6s %-30s %3d %8s key=%s in=%d out=%d node=%s",
		e.Timestamp().UTC().Format("15:04:05.000"), e.API, e.Method, e.Path, e.Status,
		(time.Duration(e.Latency) * time.Microsecond).String(), key, e.BytesIn, e.BytesOut, e.Node)
	if e.Limited != "" {
		line += " limited=" + e.Limited
	}
	_, err := fmt.Fprintln(r.env.Stdout, line)
	return err
}
