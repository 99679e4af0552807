package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/validation"
)

func (s *Server) listAPIs(w http.ResponseWriter, r *http.Request) error {
	return s.list(w, r, store.KindAPI)
}

func (s *Server) getAPI(w http.ResponseWriter, r *http.Request) error {
	return s.get(w, r, store.KindAPI)
}

func (s *Server) createAPI(w http.ResponseWriter, r *http.Request) error {
	a, body, err := s.decodeAPI(r, "")
	if err != nil {
		return err
	}
	if err := s.apply(w, r, store.Change{Kind: store.KindAPI, Op: store.OpPut, ID: a.ID, Body: body, Create: true}); err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/apis/"+a.ID)
	written(w, http.StatusCreated, body)
	return nil
}

func (s *Server) putAPI(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	a, body, err := s.decodeAPI(r, id)
	if err != nil {
		return err
	}
	_, _, getErr := s.opts.Store.GetRaw(r.Context(), store.KindAPI, a.ID)
	if err := s.apply(w, r, store.Change{Kind: store.KindAPI, Op: store.OpPut, ID: a.ID, Body: body, IfMatch: r.Header.Get("If-Match")}); err != nil {
		return err
	}
	status := http.StatusOK
	if getErr != nil {
		status = http.StatusCreated
		w.Header().Set("Location", "/v1/apis/"+a.ID)
	}
	written(w, status, body)
	return nil
}

// decodeAPI decodes and validates an API definition, including listen path
// clashes with the other stored APIs. pathID, when set, is the id in the URL.
func (s *Server) decodeAPI(r *http.Request, pathID string) (*model.API, []byte, error) {
	raw, err := readBody(r)
	if err != nil {
		return nil, nil, err
	}
	var a model.API
	if errs := decodeStrict(raw, &a); len(errs) > 0 {
		return nil, nil, errs
	}
	var errs validation.Errors
	if pathID != "" {
		if a.ID == "" {
			a.ID = pathID
		} else if a.ID != pathID {
			errs.Add("id", "must match the id in the path (%q)", pathID)
		}
	}
	errs = append(errs, a.Validate()...)
	if model.ValidID(a.ID) {
		clashes, err := s.clashes(r, &a)
		if err != nil {
			return nil, nil, err
		}
		errs = append(errs, clashes...)
	}
	if len(errs) > 0 {
		return nil, nil, errs
	}
	body, err := json.Marshal(&a)
	if err != nil {
		return nil, nil, fmt.Errorf("encode api: %w", err)
	}
	return &a, body, nil
}

// clashes returns the listen path clashes of a with the other stored APIs,
// every one with its field, for the response. It reads before the write: the
// rule itself is enforced inside store.Apply (ErrRouteTaken), so of two
// concurrent clashing writes through any syncers one is refused there.
func (s *Server) clashes(r *http.Request, a *model.API) (validation.Errors, error) {
	stored, err := s.opts.Store.APIs(r.Context())
	if err != nil {
		return nil, err
	}
	apis := []model.API{*a}
	for _, other := range stored {
		if other.ID != a.ID {
			apis = append(apis, other)
		}
	}
	var out validation.Errors
	for _, p := range model.ListenPathClashes(apis) {
		if strings.Contains(p.Message, fmt.Sprintf("%q", a.ID)) {
			out = append(out, p)
		}
	}
	return out, nil
}

func (s *Server) deleteAPI(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, _, err := s.opts.Store.GetRaw(r.Context(), store.KindAPI, id); err != nil {
		return err
	}
	users, err := s.opts.Store.PoliciesGranting(r.Context(), id)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		e := errorf(http.StatusConflict, codeConflict, "API %q is used by policies %s: remove it from them first", id, strings.Join(users, ", "))
		for _, p := range users {
			e.Details.Add("policies", "%s", p)
		}
		return e
	}
	// IfUnused: a policy granting the API written since the check above
	// makes the store refuse the delete (ErrInUse).
	if err := s.apply(w, r, store.Change{Kind: store.KindAPI, Op: store.OpDelete, ID: id, IfMatch: r.Header.Get("If-Match"), IfUnused: true}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
