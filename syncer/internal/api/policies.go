package api

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/validation"
)

func (s *Server) listPolicies(w http.ResponseWriter, r *http.Request) error {
	return s.list(w, r, store.KindPolicy)
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) error {
	return s.get(w, r, store.KindPolicy)
}

func (s *Server) createPolicy(w http.ResponseWriter, r *http.Request) error {
	p, body, err := s.decodePolicy(r, "")
	if err != nil {
		return err
	}
	if err := s.apply(w, r, store.Change{Kind: store.KindPolicy, Op: store.OpPut, ID: p.ID, Body: body, Create: true, Refs: store.PolicyRefs(p)}); err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/policies/"+p.ID)
	written(w, http.StatusCreated, body)
	return nil
}

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) error {
	p, body, err := s.decodePolicy(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	_, _, getErr := s.opts.Store.GetRaw(r.Context(), store.KindPolicy, p.ID)
	if err := s.apply(w, r, store.Change{Kind: store.KindPolicy, Op: store.OpPut, ID: p.ID, Body: body, IfMatch: r.Header.Get("If-Match"), Refs: store.PolicyRefs(p)}); err != nil {
		return err
	}
	status := http.StatusOK
	if getErr != nil {
		status = http.StatusCreated
		w.Header().Set("Location", "/v1/policies/"+p.ID)
	}
	written(w, status, body)
	return nil
}

// Deleting a policy still held by keys is allowed: a key's missing policies
// grant nothing and limit nothing, so the keys lose that access at once.
func (s *Server) deletePolicy(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.apply(w, r, store.Change{Kind: store.KindPolicy, Op: store.OpDelete, ID: id, IfMatch: r.Header.Get("If-Match")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) decodePolicy(r *http.Request, pathID string) (*model.Policy, []byte, error) {
	raw, err := readBody(r)
	if err != nil {
		return nil, nil, err
	}
	var p model.Policy
	if errs := decodeStrict(raw, &p); len(errs) > 0 {
		return nil, nil, errs
	}
	var errs validation.Errors
	if pathID != "" {
		if p.ID == "" {
			p.ID = pathID
		} else if p.ID != pathID {
			errs.Add("id", "must match the id in the path (%q)", pathID)
		}
	}
	errs = append(errs, p.Validate()...)
	if err := s.checkAccessAPIs(r, &errs, p.Access); err != nil {
		return nil, nil, err
	}
	if len(errs) > 0 {
		return nil, nil, errs
	}
	if p.Access == nil {
		p.Access = []model.AccessRight{}
	}
	body, err := json.Marshal(&p)
	if err != nil {
		return nil, nil, fmt.Errorf("encode policy: %w", err)
	}
	return &p, body, nil
}
