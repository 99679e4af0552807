package api

import (
	"net/http"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/validation"
)

// Policies: every API a policy grants must exist (400, field
// access[i].api; checked again inside the write). Deleting a policy still
// held by keys is allowed: a key's missing policies grant nothing and
// limit nothing, so the keys lose that access at once.
var policyKind = kind[model.Policy]{
	name: store.KindPolicy, path: "/v1/policies",
	id:       func(p *model.Policy) *string { return &p.ID },
	validate: (*model.Policy).Validate,
	check: func(s *Server, r *http.Request, p *model.Policy, errs *validation.Errors) error {
		return s.checkAccessAPIs(r, errs, p.Access)
	},
	stored: func(p *model.Policy) {
		if p.Access == nil {
			p.Access = []model.AccessRight{}
		}
	},
	refs: store.PolicyRefs,
}
