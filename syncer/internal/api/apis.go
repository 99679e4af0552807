package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/validation"
)

// APIs: a listen path another API holds is refused (400, field
// listen_path), and so is deleting an API a policy grants (409 naming the
// policies): both are checked again inside the write.
var apiKind = kind[model.API]{
	name: store.KindAPI, path: "/v1/apis",
	id:       func(a *model.API) *string { return &a.ID },
	validate: (*model.API).Validate,
	check:    (*Server).checkListenPath,
	inUse:    (*Server).apiInUse,
	ifUnused: true,
}

// checkListenPath adds the listen path clashes of a with the other stored
// APIs, every one with its field, for the response. It reads before the
// write: the rule itself is enforced inside store.Apply (ErrRouteTaken),
// so of two concurrent clashing writes through any syncers one is refused
// there.
func (s *Server) checkListenPath(r *http.Request, a *model.API, errs *validation.Errors) error {
	if !model.ValidID(a.ID) {
		return nil
	}
	stored, err := s.opts.Store.APIs(r.Context())
	if err != nil {
		return err
	}
	apis := []model.API{*a}
	for _, other := range stored {
		if other.ID != a.ID {
			apis = append(apis, other)
		}
	}
	for _, p := range model.ListenPathClashes(apis) {
		if strings.Contains(p.Message, fmt.Sprintf("%q", a.ID)) {
			*errs = append(*errs, p)
		}
	}
	return nil
}

// apiInUse answers a delete of an API that does not exist (404) or that
// policies grant (409, naming them). A policy granting the API written
// after this check makes the store refuse the delete (ErrInUse).
func (s *Server) apiInUse(r *http.Request, id string) error {
	if _, _, err := s.opts.Store.GetRaw(r.Context(), store.KindAPI, id); err != nil {
		return err
	}
	users, err := s.opts.Store.PoliciesGranting(r.Context(), id)
	if err != nil {
		return err
	}
	if len(users) == 0 {
		return nil
	}
	e := errorf(http.StatusConflict, codeConflict, "API %q is used by policies %s: remove it from them first", id, strings.Join(users, ", "))
	for _, p := range users {
		e.Details.Add("policies", "%s", p)
	}
	return e
}
