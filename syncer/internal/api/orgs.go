package api

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/validation"
)

// Orgs (tenants): keys name one (model.Key.Org), and its rate limit and
// quota count across all of its keys and APIs. They are written like
// policies (validation, ETags, audit, changelog, announcement); deleting
// an org that keys still name is refused (409): move or delete the keys
// first.

func (s *Server) listOrgs(w http.ResponseWriter, r *http.Request) error {
	return s.list(w, r, store.KindOrg)
}

func (s *Server) getOrg(w http.ResponseWriter, r *http.Request) error {
	return s.get(w, r, store.KindOrg)
}

func (s *Server) createOrg(w http.ResponseWriter, r *http.Request) error {
	o, body, err := decodeOrg(r, "")
	if err != nil {
		return err
	}
	if err := s.apply(w, r, store.Change{Kind: store.KindOrg, Op: store.OpPut, ID: o.ID, Body: body, Create: true}); err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/orgs/"+o.ID)
	written(w, http.StatusCreated, body)
	return nil
}

func (s *Server) putOrg(w http.ResponseWriter, r *http.Request) error {
	o, body, err := decodeOrg(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	_, _, getErr := s.opts.Store.GetRaw(r.Context(), store.KindOrg, o.ID)
	if err := s.apply(w, r, store.Change{Kind: store.KindOrg, Op: store.OpPut, ID: o.ID, Body: body, IfMatch: r.Header.Get("If-Match")}); err != nil {
		return err
	}
	status := http.StatusOK
	if getErr != nil {
		status = http.StatusCreated
		w.Header().Set("Location", "/v1/orgs/"+o.ID)
	}
	written(w, status, body)
	return nil
}

// deleteOrg refuses (409) while a key names the org, checked inside the
// write (store.Change.IfUnused).
func (s *Server) deleteOrg(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.apply(w, r, store.Change{Kind: store.KindOrg, Op: store.OpDelete, ID: id, IfMatch: r.Header.Get("If-Match"), IfUnused: true}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func decodeOrg(r *http.Request, pathID string) (*model.Org, []byte, error) {
	raw, err := readBody(r)
	if err != nil {
		return nil, nil, err
	}
	return parseOrg(raw, pathID)
}

// parseOrg decodes and validates an org's JSON (unknown fields refused);
// pathID, when set, is the id in the request's path.
func parseOrg(raw []byte, pathID string) (*model.Org, []byte, error) {
	var o model.Org
	if errs := decodeStrict(raw, &o); len(errs) > 0 {
		return nil, nil, errs
	}
	var errs validation.Errors
	if pathID != "" {
		if o.ID == "" {
			o.ID = pathID
		} else if o.ID != pathID {
			errs.Add("id", "must match the id in the path (%q)", pathID)
		}
	}
	errs = append(errs, o.Validate()...)
	if len(errs) > 0 {
		return nil, nil, errs
	}
	body, err := json.Marshal(&o)
	if err != nil {
		return nil, nil, fmt.Errorf("encode org: %w", err)
	}
	return &o, body, nil
}

// checkKeyOrg adds a problem when the key names an org that does not
// exist (checked again inside the write, store.KeyRefs).
func (s *Server) checkKeyOrg(r *http.Request, errs *validation.Errors, k *model.Key) error {
	if k.Org == "" || !model.ValidID(k.Org) {
		return nil
	}
	have, err := s.opts.Store.Exist(r.Context(), store.KindOrg, []string{k.Org})
	if err != nil {
		return err
	}
	if !have[k.Org] {
		errs.Add("org", "unknown org %q", k.Org)
	}
	return nil
}
