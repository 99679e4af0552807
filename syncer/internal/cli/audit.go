package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// auditEntry is one entry of GET /v1/audit.
type auditEntry struct {
	ID      string        `json:"id" yaml:"id"`
	Time    time.Time     `json:"time" yaml:"time"`
	Version int64         `json:"version" yaml:"version"`
	Actor   string        `json:"actor" yaml:"actor"`
	Changes []auditChange `json:"changes" yaml:"changes"`
}

type auditChange struct {
	Kind       string `json:"kind" yaml:"kind"`
	ID         string `json:"id" yaml:"id"`
	Op         string `json:"op" yaml:"op"`
	ETagBefore string `json:"etag_before,omitempty" yaml:"etag_before,omitempty"`
	ETagAfter  string `json:"etag_after,omitempty" yaml:"etag_after,omitempty"`
}

// auditPages bounds the pages one listing or one poll of --follow reads.
const auditPages = 1000

func cmdAudit(ctx context.Context, r *run, args []string) error {
	fs := r.flagSet("audit", "", "Show the audit trail of admin writes (GET /v1/audit): who (the token's name), when, the config version, and each change with the object's ETag before and after. Newest first; with --follow, oldest first and then each new write as it is made.")
	kind := fs.String("kind", "", "only changes of this kind: api, policy or key")
	id := fs.String("id", "", "only changes of this object id")
	actor := fs.String("actor", "", "only writes by this token name")
	since := fs.String("since", "", "from: RFC 3339 time or a duration before now (1h)")
	until := fs.String("until", "", "to: RFC 3339 time or a duration before now")
	limit := fs.Int("limit", 50, "most entries to show (with --follow: before following)")
	follow := fs.Bool("follow", false, "keep polling and print new entries as they are written (Ctrl-C stops)")
	interval := fs.Duration("interval", 2*time.Second, "poll interval of --follow")
	if _, err := r.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *limit < 1 {
		return usageErrorf("audit: --limit must be at least 1")
	}
	if *interval < 100*time.Millisecond {
		return usageErrorf("audit: --interval must be at least 100ms")
	}
	q := url.Values{}
	for k, v := range map[string]string{"kind": *kind, "id": *id, "actor": *actor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for k, v := range map[string]string{"since": *since, "until": *until} {
		if v == "" {
			continue
		}
		t, err := auditTime(v, r.env.Now())
		if err != nil {
			return usageErrorf("audit: --%s: %v", k, err)
		}
		q.Set(k, t.Format(time.RFC3339Nano))
	}
	c, err := r.admin()
	if err != nil {
		return err
	}
	entries, err := auditNewest(ctx, c, q, *limit, "")
	if err != nil {
		return err
	}
	if !*follow {
		return r.printAudit(entries)
	}
	return r.followAudit(ctx, c, q, entries, *interval)
}

// auditTime reads an RFC 3339 time or a duration before now ("1h", "-1h").
func auditTime(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(strings.TrimPrefix(v, "-"))
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration like 1h", v)
	}
	return now.Add(-d), nil
}

// auditNewest returns up to limit entries, newest first, stopping at the
// entry after (exclusive) when it is not empty.
func auditNewest(ctx context.Context, c *client, q url.Values, limit int, after string) ([]auditEntry, error) {
	var out []auditEntry
	cursor := ""
	for pages := 0; pages < auditPages; pages++ {
		p := url.Values{}
		for k, v := range q {
			p[k] = v
		}
		p.Set("limit", strconv.Itoa(min(limit-len(out), 1000)))
		if cursor != "" {
			p.Set("cursor", cursor)
		}
		var page struct {
			Items      []auditEntry `json:"items"`
			NextCursor string       `json:"next_cursor"`
		}
		if _, err := c.getJSON(ctx, "/v1/audit?"+p.Encode(), &page); err != nil {
			return nil, err
		}
		for _, e := range page.Items {
			if after != "" && !auditAfter(e.ID, after) {
				return out, nil
			}
			out = append(out, e)
		}
		if len(out) >= limit || page.NextCursor == "" {
			return out, nil
		}
		cursor = page.NextCursor
	}
	return out, nil
}

// auditAfter reports whether stream id a comes after b ("<ms>-<seq>").
func auditAfter(a, b string) bool {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	x, _ := strconv.ParseUint(am, 10, 64)
	y, _ := strconv.ParseUint(bm, 10, 64)
	if x != y {
		return x > y
	}
	p, _ := strconv.ParseUint(as, 10, 64)
	s, _ := strconv.ParseUint(bs, 10, 64)
	return p > s
}

// followAudit prints first (newest first) oldest first, then polls for
// entries after the newest printed until ctx ends. Table output prints the
// header once; json prints one entry per line.
func (r *run) followAudit(ctx context.Context, c *client, q url.Values, first []auditEntry, every time.Duration) error {
	last := ""
	if len(first) > 0 {
		last = first[0].ID
	}
	header := true
	emit := func(newestFirst []auditEntry) error {
		for i := len(newestFirst) - 1; i >= 0; i-- {
			if err := r.printAuditLine(newestFirst[i], header); err != nil {
				return err
			}
			header = false
		}
		return nil
	}
	if err := emit(first); err != nil {
		return err
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		fresh, err := auditNewest(ctx, c, q, 100000, last)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if len(fresh) > 0 {
			last = fresh[0].ID
		}
		if err := emit(fresh); err != nil {
			return err
		}
	}
}

var auditHeader = []string{"TIME", "VERSION", "ACTOR", "OP", "KIND", "ID", "ETAG BEFORE", "ETAG AFTER"}

func auditRows(e auditEntry) [][]string {
	rows := make([][]string, 0, len(e.Changes))
	for _, ch := range e.Changes {
		rows = append(rows, []string{e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), strconv.FormatInt(e.Version, 10),
			e.Actor, ch.Op, ch.Kind, ch.ID, ch.ETagBefore, ch.ETagAfter})
	}
	return rows
}

func (r *run) printAudit(entries []auditEntry) error {
	if entries == nil {
		entries = []auditEntry{}
	}
	switch r.g.output {
	case "json":
		return printJSON(r.env.Stdout, entries)
	case "yaml":
		return printYAML(r.env.Stdout, entries)
	}
	var rows [][]string
	for _, e := range entries {
		rows = append(rows, auditRows(e)...)
	}
	return table(r.env.Stdout, auditHeader, rows)
}

// printAuditLine prints one entry of --follow: a JSON line, a YAML
// document, or table rows separated by tabs (a stream cannot be aligned).
func (r *run) printAuditLine(e auditEntry, header bool) error {
	w := r.env.Stdout
	switch r.g.output {
	case "json":
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		fmt.Fprintln(w, "---")
		return printYAML(w, e)
	}
	if header {
		fmt.Fprintln(w, strings.Join(auditHeader, "\t"))
	}
	for _, row := range auditRows(e) {
		for i := range row {
			if row[i] == "" {
				row[i] = "-"
			}
		}
		if _, err := fmt.Fprintln(w, strings.Join(row, "\t")); err != nil {
			return err
		}
	}
	return nil
}
