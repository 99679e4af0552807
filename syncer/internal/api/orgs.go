package api

import (
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
)

// Orgs (tenants): keys name one (model.Key.Org), and its rate limit and
// quota count across all of its keys and APIs. Deleting an org that keys
// still name is refused (409), inside the write: move or delete the keys
// first.
var orgKind = kind[model.Org]{
	name: store.KindOrg, path: "/v1/orgs",
	id:       func(o *model.Org) *string { return &o.ID },
	validate: (*model.Org).Validate,
	ifUnused: true,
}
