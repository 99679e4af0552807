package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/validation"
)

// Pagination: list endpoints walk the ids of a Redis hash in sorted order.
// The cursor is the last id of the previous page (base64url, opaque to
// clients), so pages are stable under concurrent writes: an object created
// or deleted meanwhile appears or not, but no other object is skipped or
// repeated. Each page costs one HKEYS plus one HMGET: fine for a control
// plane with up to hundreds of thousands of objects.
const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

type page struct {
	Items      []json.RawMessage `json:"items"`
	NextCursor string            `json:"next_cursor"`
}

// pageIDs returns the ids of the page the request asks for, among all, and
// the cursor of the next page ("" on the last).
func pageIDs(r *http.Request, all []string) ([]string, string, error) {
	var errs validation.Errors
	limit := defaultPageSize
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			errs.Add("limit", "must be an integer from 1 to %d", maxPageSize)
		}
		limit = n
	}
	after := ""
	if c := r.URL.Query().Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(b) == 0 {
			errs.Add("cursor", "is not a cursor returned by this API")
		}
		after = string(b)
	}
	if len(errs) > 0 {
		return nil, "", errs
	}
	sort.Strings(all)
	start := 0
	if after != "" {
		start = sort.SearchStrings(all, after)
		if start < len(all) && all[start] == after {
			start++
		}
	}
	end := min(start+limit, len(all))
	ids := all[start:end]
	next := ""
	if end < len(all) && len(ids) > 0 {
		next = base64.RawURLEncoding.EncodeToString([]byte(ids[len(ids)-1]))
	}
	return ids, next, nil
}

// listHash answers a list request over the hash hkey (id -> JSON).
func (s *Server) listHash(w http.ResponseWriter, r *http.Request, hkey string) error {
	rdb := s.opts.Store.Client()
	all, err := rdb.HKeys(r.Context(), hkey).Result()
	if err != nil {
		return fmt.Errorf("list %s: %w", hkey, err)
	}
	ids, next, err := pageIDs(r, all)
	if err != nil {
		return err
	}
	items, err := s.bodies(r, hkey, ids)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page{Items: items, NextCursor: next})
	return nil
}

// bodies reads the JSON stored under fields of hkey, skipping ones deleted
// meanwhile.
func (s *Server) bodies(r *http.Request, hkey string, fields []string) ([]json.RawMessage, error) {
	items := make([]json.RawMessage, 0, len(fields))
	if len(fields) == 0 {
		return items, nil
	}
	vals, err := s.opts.Store.Client().HMGet(r.Context(), hkey, fields...).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", hkey, err)
	}
	for _, v := range vals {
		if str, ok := v.(string); ok {
			items = append(items, json.RawMessage(str))
		}
	}
	return items, nil
}

// get answers GET of one object with its ETag.
func (s *Server) get(w http.ResponseWriter, r *http.Request, kind string) error {
	body, etag, err := s.opts.Store.GetRaw(r.Context(), kind, r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
	return nil
}

// readBody reads the (size-limited) request body.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(http.StatusBadRequest, codeInvalid, "request body larger than %d bytes", mbe.Limit)
		}
		return nil, errorf(http.StatusBadRequest, codeInvalid, "read request body: %v", err)
	}
	return b, nil
}

// apply writes changes with their audit entry naming the request's token,
// announces the new version and sets the Sluice-Config-Version header.
func (s *Server) apply(w http.ResponseWriter, r *http.Request, changes ...store.Change) error {
	v, err := s.opts.Store.ApplyAs(r.Context(), actor(r.Context()), changes...)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) && changes[0].IfMatch != "" {
			return errorf(http.StatusPreconditionFailed, codePrecondition, "%v (If-Match given but the object does not exist)", err)
		}
		return err
	}
	s.opts.Announcer.Announce(r.Context(), s.opts.Store, v)
	w.Header().Set("Sluice-Config-Version", strconv.FormatInt(v, 10))
	return nil
}

// written answers a successful write with the stored body and its ETag.
func written(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("ETag", store.ETag(body))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// existing returns which of ids are fields of hkey.
func (s *Server) existing(r *http.Request, hkey string, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	vals, err := s.opts.Store.Client().HMGet(r.Context(), hkey, ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", hkey, err)
	}
	for i, v := range vals {
		if v != nil {
			out[ids[i]] = true
		}
	}
	return out, nil
}

// checkAccessAPIs adds a problem for every access right naming an API that
// does not exist.
func (s *Server) checkAccessAPIs(r *http.Request, errs *validation.Errors, access []model.AccessRight) error {
	ids := make([]string, len(access))
	for i, a := range access {
		ids[i] = a.API
	}
	have, err := s.existing(r, s.opts.Store.Layout().APIs(), ids)
	if err != nil {
		return err
	}
	for i, a := range access {
		if model.ValidID(a.API) && !have[a.API] {
			errs.Add(validation.Index("access", i)+".api", "unknown API %q", a.API)
		}
	}
	return nil
}
