package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/validation"
)

// auditPage is the answer of GET /v1/audit: entries newest first.
type auditPage struct {
	Items      []store.AuditEntry `json:"items"`
	NextCursor string             `json:"next_cursor"`
}

// audit answers GET /v1/audit: the audit trail, newest first, filtered by
// kind, id, actor and time (since, until: RFC 3339, inclusive), a page of
// limit entries at a time (cursor: next_cursor of the previous page).
func (s *Server) audit(w http.ResponseWriter, r *http.Request) error {
	q, err := auditQuery(r)
	if err != nil {
		return err
	}
	items, next, err := s.opts.Store.Audit(r.Context(), q)
	if err != nil {
		return err
	}
	if next != "" {
		next = base64.RawURLEncoding.EncodeToString([]byte(next))
	}
	writeJSON(w, http.StatusOK, auditPage{Items: items, NextCursor: next})
	return nil
}

func auditQuery(r *http.Request) (store.AuditQuery, error) {
	p := r.URL.Query()
	var errs validation.Errors
	q := store.AuditQuery{Kind: p.Get("kind"), ID: p.Get("id"), Actor: p.Get("actor"), Limit: defaultPageSize}
	switch q.Kind {
	case "", store.KindAPI, store.KindPolicy, store.KindKey, store.KindOrg:
	default:
		errs.Add("kind", "%q is not one of api, policy, key, org", q.Kind)
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if v := p.Get(t.name); v != "" {
			ts, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				errs.Add(t.name, "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
			}
			*t.dst = ts
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		errs.Add("until", "is before since")
	}
	if v := p.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			errs.Add("limit", "must be an integer from 1 to %d", maxPageSize)
		}
		q.Limit = n
	}
	if c := p.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || !store.ValidAuditID(string(b)) {
			errs.Add("cursor", "is not a cursor returned by this API")
		}
		q.Before = string(b)
	}
	if len(errs) > 0 {
		return q, errs
	}
	return q, nil
}
