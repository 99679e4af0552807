package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/validation"
)

// Pagination: list endpoints walk the ids of a kind in sorted order
// (store.List). The cursor is the last id of the previous page (base64url,
// opaque to clients), so pages are stable under concurrent writes: an
// object created or deleted meanwhile appears or not, but no other object
// is skipped or repeated.
const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

type page struct {
	Items      []json.RawMessage `json:"items"`
	NextCursor string            `json:"next_cursor"`
}

// pageQuery returns the page a list request asks for: the id its cursor
// names ("" from the first) and its limit.
func pageQuery(r *http.Request) (after string, limit int, err error) {
	var errs validation.Errors
	limit = defaultPageSize
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			errs.Add("limit", "must be an integer from 1 to %d", maxPageSize)
		}
		limit = n
	}
	if c := r.URL.Query().Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(b) == 0 {
			errs.Add("cursor", "is not a cursor returned by this API")
		}
		after = string(b)
	}
	if len(errs) > 0 {
		return "", 0, errs
	}
	return after, limit, nil
}

// list answers a list request over the objects of kind.
func (s *Server) list(w http.ResponseWriter, r *http.Request, kind string) error {
	after, limit, err := pageQuery(r)
	if err != nil {
		return err
	}
	p, err := s.opts.Store.List(r.Context(), kind, after, limit)
	if err != nil {
		return err
	}
	next := ""
	if p.Next != "" {
		next = base64.RawURLEncoding.EncodeToString([]byte(p.Next))
	}
	writeJSON(w, http.StatusOK, page{Items: p.Items, NextCursor: next})
	return nil
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

// checkAccessAPIs adds a problem for every access right naming an API that
// does not exist.
func (s *Server) checkAccessAPIs(r *http.Request, errs *validation.Errors, access []model.AccessRight) error {
	ids := make([]string, len(access))
	for i, a := range access {
		ids[i] = a.API
	}
	have, err := s.opts.Store.Exist(r.Context(), store.KindAPI, ids)
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
