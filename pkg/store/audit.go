package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The audit trail: every Apply appends one entry to AuditKey in the same
// script as the write, so an entry exists exactly for each version written
// (a refused write leaves none). Entry IDs are Redis stream IDs
// ("<ms>-<seq>", Redis time), so time ranges are ID ranges.

// DefaultAuditLen is how many audit entries are kept by default (trimmed
// approximately: MAXLEN ~).
const DefaultAuditLen = 100000

// SystemActor is the actor of writes made without one (tools, tests).
const SystemActor = "system"

// SetAuditLength sets how many audit entries are kept (<= 0: default). Call
// it before the Store is used.
func (s *Store) SetAuditLength(n int64) {
	if n <= 0 {
		n = DefaultAuditLen
	}
	s.auditLen = n
}

// AuditEntry is one write: who made it, when, at which version, and the
// changes with the ETag of each object before and after ("" when absent).
type AuditEntry struct {
	ID      string        `json:"id"`
	Time    time.Time     `json:"time"`
	Version int64         `json:"version"`
	Actor   string        `json:"actor"`
	Changes []AuditChange `json:"changes"`
}

// AuditChange is one object change of an audit entry.
type AuditChange struct {
	Kind       string `json:"kind"`
	ID         string `json:"id"`
	Op         string `json:"op"`
	ETagBefore string `json:"etag_before,omitempty"`
	ETagAfter  string `json:"etag_after,omitempty"`
}

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	// Kind, ID and Actor, when set, must match (Kind and ID on the same
	// change).
	Kind, ID, Actor string
	// Since and Until bound the entries' time (inclusive); zero: open.
	Since, Until time.Time
	// Limit is the most entries returned (> 0).
	Limit int
	// Before, when set, is the ID of the last entry of the previous page:
	// only older entries are returned.
	Before string
}

// auditScanMax bounds the entries one Audit call reads, so a filter that
// matches little cannot make one request read the whole stream; the caller
// gets a cursor to continue.
const auditScanMax = 10000

// ValidAuditID reports whether id has the form of a stream ID.
func ValidAuditID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	_, e1 := strconv.ParseUint(ms, 10, 64)
	_, e2 := strconv.ParseUint(seq, 10, 64)
	return ok && e1 == nil && e2 == nil
}

// Audit returns the entries q selects, newest first, and the cursor of the
// next page ("" when there is none): pass it as q.Before.
func (s *Store) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, string, error) {
	if q.Limit <= 0 {
		return nil, "", errors.New("store: audit: limit must be positive")
	}
	if q.Before != "" && !ValidAuditID(q.Before) {
		return nil, "", fmt.Errorf("store: audit: %q is not an entry id", q.Before)
	}
	end, start := "+", "-"
	if !q.Until.IsZero() {
		end = strconv.FormatInt(q.Until.UnixMilli(), 10)
	}
	if q.Before != "" && (end == "+" || lessID(q.Before, end)) {
		end = "(" + q.Before
	}
	if !q.Since.IsZero() {
		start = strconv.FormatInt(q.Since.UnixMilli(), 10)
	}
	out := make([]AuditEntry, 0, min(q.Limit, 100))
	scanned := 0
	for scanned < auditScanMax {
		chunk := int64(min(auditScanMax-scanned, max(q.Limit-len(out), 100)))
		msgs, err := s.rdb.XRevRangeN(ctx, s.layout.Audit(), end, start, chunk).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, "", fmt.Errorf("store: audit: %w", err)
		}
		for i, m := range msgs {
			scanned++
			e := parseAudit(m)
			if !q.matches(e) {
				continue
			}
			out = append(out, e)
			if len(out) == q.Limit {
				// More may follow unless this was the stream's last.
				if i < len(msgs)-1 || int64(len(msgs)) == chunk {
					return out, e.ID, nil
				}
				return out, "", nil
			}
		}
		if int64(len(msgs)) < chunk {
			return out, "", nil
		}
		end = "(" + msgs[len(msgs)-1].ID
	}
	return out, strings.TrimPrefix(end, "("), nil
}

// lessID compares two stream IDs (or a bare millisecond time, b).
func lessID(a, b string) bool {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	x, _ := strconv.ParseUint(am, 10, 64)
	y, _ := strconv.ParseUint(bm, 10, 64)
	if x != y {
		return x < y
	}
	if bs == "" {
		return true // b is "<ms>": every "<ms>-<seq>" is in it
	}
	p, _ := strconv.ParseUint(as, 10, 64)
	r, _ := strconv.ParseUint(bs, 10, 64)
	return p < r
}

func (q *AuditQuery) matches(e AuditEntry) bool {
	if q.Actor != "" && e.Actor != q.Actor {
		return false
	}
	if q.Kind == "" && q.ID == "" {
		return true
	}
	for _, c := range e.Changes {
		if (q.Kind == "" || c.Kind == q.Kind) && (q.ID == "" || c.ID == q.ID) {
			return true
		}
	}
	return false
}

func parseAudit(m redis.XMessage) AuditEntry {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	etag := func(hex string) string {
		if hex == "" {
			return ""
		}
		return `"` + hex + `"`
	}
	e := AuditEntry{ID: m.ID, Actor: str("actor")}
	if ms, _, ok := strings.Cut(m.ID, "-"); ok {
		n, _ := strconv.ParseInt(ms, 10, 64)
		e.Time = time.UnixMilli(n).UTC()
	}
	e.Version, _ = strconv.ParseInt(str("version"), 10, 64)
	n, _ := strconv.Atoi(str("n"))
	e.Changes = make([]AuditChange, 0, n)
	if packed := str("changes"); packed != "" { // a large batch (see applyScript)
		var cs [][5]string
		_ = json.Unmarshal([]byte(packed), &cs)
		for _, c := range cs {
			e.Changes = append(e.Changes, AuditChange{Kind: c[0], Op: c[1], ID: c[2], ETagBefore: etag(c[3]), ETagAfter: etag(c[4])})
		}
		return e
	}
	for i := 0; i < n; i++ {
		j := strconv.Itoa(i)
		e.Changes = append(e.Changes, AuditChange{Kind: str("kind" + j), ID: str("id" + j), Op: str("op" + j),
			ETagBefore: etag(str("before" + j)), ETagAfter: etag(str("after" + j))})
	}
	return e
}
