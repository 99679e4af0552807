package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/config"
	"github.com/sluicegw/sluice/pkg/connect"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/usage"
	"github.com/sluicegw/sluice/pkg/validation"
)

func cmdUsage(ctx context.Context, r *run, args []string) error {
	fs := r.flagSet("usage", "", "Show requests per step (counts by status class, limited, bytes, units, latency percentiles) from the analytics query API (GET /v1/usage), then the top consumers over the same range (GET /v1/usage/top).")
	fs.StringVar(&r.g.analytics, "analytics", r.g.analytics, "analytics query API address (env SLUICE_ANALYTICS_URL)")
	token := fs.String("analytics-token", r.env.Getenv("SLUICE_ANALYTICS_TOKEN"), "bearer token of the analytics API; needed unless the worker runs with auth.disabled (env SLUICE_ANALYTICS_TOKEN)")
	api := fs.String("api", "", "only this API id")
	key := fs.String("key", "", "only this key hash")
	from := fs.String("from", "", "start: RFC 3339, Unix seconds or a duration before now like -1h (default: one hour before --to)")
	to := fs.String("to", "", "end: RFC 3339, Unix seconds, now or -duration (default now)")
	step := fs.String("step", "1m", "bucket size: 1m, 1h or 1d")
	top := fs.String("top", "", "top consumers by key, api or endpoint; none to skip (default: key; with --api, that API's endpoints; with --key, none)")
	limit := fs.Int("limit", 10, "how many top consumers")
	if _, err := r.parse(fs, args, 0, 0); err != nil {
		return err
	}
	switch *step {
	case "1m", "1h", "1d":
	default:
		return usageErrorf("usage: --step %q: use 1m, 1h or 1d", *step)
	}
	if *top == "" {
		switch {
		case *api != "":
			*top = "endpoint"
		case *key != "":
			*top = "none"
		default:
			*top = "key"
		}
	}
	switch *top {
	case "key", "api", "endpoint", "none":
	default:
		return usageErrorf("usage: --top %q: use key, api, endpoint or none", *top)
	}
	keep, err := topFilter(*top, *api, *key)
	if err != nil {
		return err
	}
	c, err := newClient(r.g.analytics, *token, r.env.HTTPClient)
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
		n := *limit
		if keep != nil {
			n = maxTopLimit // narrowed here: ask for all, keep the first limit
		}
		tq := url.Values{"by": {*top}, "limit": {strconv.Itoa(n)}}
		for _, k := range []string{"from", "to"} {
			if v := q.Get(k); v != "" {
				tq.Set(k, v)
			}
		}
		if _, err := c.getJSON(ctx, "/v1/usage/top?"+tq.Encode(), &topRaw); err != nil {
			return err
		}
		if keep != nil {
			if topRaw, err = narrowTop(topRaw, keep, *limit); err != nil {
				return err
			}
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

var pointHeader = []string{"REQUESTS", "2XX", "3XX", "4XX", "5XX", "LIMITED", "BYTES IN", "BYTES OUT", "UNITS", "P50 MS", "P95 MS", "P99 MS"}

// cells renders counts as the columns of pointHeader.
func cells(p *usage.Counts) []string {
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	return []string{i(p.Requests), i(p.Status.S2xx), i(p.Status.S3xx), i(p.Status.S4xx), i(p.Status.S5xx),
		i(p.Limited), i(p.BytesIn), i(p.BytesOut), i(p.Units), f(p.P50), f(p.P95), f(p.P99)}
}

func printSeries(w io.Writer, raw json.RawMessage) error {
	var ans usage.UsageResponse
	if err := json.Unmarshal(raw, &ans); err != nil {
		return fmt.Errorf("decode usage answer: %w", err)
	}
	rows := make([][]string, 0, len(ans.Series)+1)
	for _, p := range ans.Series {
		rows = append(rows, append([]string{p.T.UTC().Format(time.RFC3339)}, cells(&p.Counts)...))
	}
	rows = append(rows, append([]string{"TOTAL"}, cells(&ans.Totals.Counts)...))
	return table(w, append([]string{"TIME"}, pointHeader...), rows)
}

func printTop(w io.Writer, raw json.RawMessage) error {
	var ans usage.TopResponse
	if err := json.Unmarshal(raw, &ans); err != nil {
		return fmt.Errorf("decode top answer: %w", err)
	}
	rows := make([][]string, 0, len(ans.Items))
	for _, it := range ans.Items {
		rows = append(rows, append([]string{it.Name, it.API}, cells(&it.Counts)...))
	}
	return table(w, append([]string{strings.ToUpper(ans.By), "API"}, pointHeader...), rows)
}

func cmdUsageTail(ctx context.Context, r *run, args []string) error {
	fs := r.flagSet("usage tail", "", "Print usage events live as gateway nodes publish them (core NATS subscription to <namespace>.usage.<api>, or every API). One line per event; -o json prints the events as NDJSON.")
	fs.StringVar(&r.g.nats, "nats", r.g.nats, "NATS server URL (env SLUICE_NATS_URL)")
	ns := fs.String("namespace", "", "namespace of the environment (env SLUICE_NATS_NAMESPACE; default sluice)")
	api := fs.String("api", "", "only this API id")
	count := fs.Int("count", 0, "stop after this many events (0: until interrupted)")
	if _, err := r.parse(fs, args, 0, 0); err != nil {
		return err
	}
	nconf, err := natsConfig(r.env, r.g.nats)
	if err != nil {
		return err
	}
	if *ns != "" {
		if err := validation.Namespace(*ns); err != nil {
			return usageErrorf("usage tail: --namespace: %v", err)
		}
		nconf.Namespace = *ns
	}
	names := nconf.Names()
	subject := names.UsageWildcard()
	if *api != "" {
		if !model.ValidID(*api) {
			return usageErrorf("usage tail: --api %q is not a valid API id", *api)
		}
		subject = names.UsageSubject(*api)
	}
	nc, err := nconf.Connect("sluicectl usage tail", zerolog.Nop())
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

// natsConfig is the nats section the services read, from the same
// SLUICE_NATS_* variables (credentials, TLS), with url from --nats. A
// command fails at once when NATS is unreachable.
func natsConfig(env Env, server string) (connect.NATS, error) {
	s := struct {
		NATS connect.NATS `yaml:"nats"`
	}{connect.DefaultNATS()}
	var kv []string
	for _, v := range config.Vars(config.Prefix, &s) {
		if val := env.Getenv(v.Name); val != "" {
			kv = append(kv, v.Name+"="+val)
		}
	}
	if err := config.ApplyEnv(config.Prefix, kv, &s); err != nil {
		return s.NATS, usageErrorf("%v", err)
	}
	s.NATS.URL, s.NATS.RetryOnFailedConnect = server, false
	var errs validation.Errors
	errs.Merge("nats", s.NATS.Validate())
	if err := errs.Err(); err != nil {
		return s.NATS, usageErrorf("invalid NATS settings: %v", err)
	}
	return s.NATS, nil
}

// maxTopLimit is the most top consumers the analytics API returns.
const maxTopLimit = 1000

// topFilter returns which top consumers --api and --key keep (nil: all).
// The analytics API ranks over all traffic: an API's top endpoints and an
// API's or a key's own row can be picked out of its answer; a ranking of
// keys within one API, or of APIs for one key, cannot.
func topFilter(top, api, key string) (func(name, itemAPI string) bool, error) {
	switch {
	case top == "none" || (api == "" && key == ""):
		return nil, nil
	case key == "" && top == "api":
		return func(name, _ string) bool { return name == api }, nil
	case key == "" && top == "endpoint":
		return func(_, itemAPI string) bool { return itemAPI == api }, nil
	case api == "" && top == "key":
		return func(name, _ string) bool { return name == key }, nil
	}
	return nil, usageErrorf("usage: --top %s cannot be narrowed to --api and --key as given: the analytics API ranks over all traffic; use --top none, or --top endpoint or api with --api, or --top key with --key", top)
}

// narrowTop keeps the first limit items of a GET /v1/usage/top answer that
// keep accepts.
func narrowTop(raw json.RawMessage, keep func(name, api string) bool, limit int) (json.RawMessage, error) {
	var ans map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&ans); err != nil {
		return nil, fmt.Errorf("decode top answer: %w", err)
	}
	items, _ := ans["items"].([]any)
	kept := []any{}
	for _, it := range items {
		m, _ := it.(map[string]any)
		name, _ := m["name"].(string)
		api, _ := m["api"].(string)
		if keep(name, api) && len(kept) < limit {
			kept = append(kept, it)
		}
	}
	ans["items"] = kept
	return json.Marshal(ans)
}
