package declarative

import (
	"fmt"
	"sort"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/validation"
)

// Orgs in the declarative file (orgs:). They refer to nothing, so the plan
// creates and updates them first; keys name them, so it deletes them last,
// and the write refuses the delete of an org a stored key names
// (store.Change.IfUnused).

// KindOrg is the kind of an org in a plan.
const KindOrg = "org"

func (f *File) normalizeOrgs() {
	sort.SliceStable(f.Orgs, func(i, j int) bool { return f.Orgs[i].ID < f.Orgs[j].ID })
}

// validateOrgs adds every problem of the file's orgs, with duplicate ids.
func (f *File) validateOrgs(errs *validation.Errors) {
	idx := map[string]int{}
	for i := range f.Orgs {
		o := &f.Orgs[i]
		p := validation.Index("orgs", i)
		errs.Merge(p, o.Validate())
		if j, ok := idx[o.ID]; ok && o.ID != "" {
			errs.Add(p+".id", "duplicate id %q (also orgs[%d])", o.ID, j)
		} else {
			idx[o.ID] = i
		}
	}
}

// planOrgPuts appends the creates and updates of the desired orgs.
func (p *Plan) planOrgPuts(want, cur []model.Org) error {
	stored := map[string]*model.Org{}
	for i := range cur {
		stored[cur[i].ID] = &cur[i]
	}
	w := append([]model.Org(nil), want...)
	sort.SliceStable(w, func(i, j int) bool { return w[i].ID < w[j].ID })
	for i := 1; i < len(w); i++ {
		if w[i].ID == w[i-1].ID {
			return fmt.Errorf("org %q: %w", w[i].ID, ErrDuplicate)
		}
	}
	for i := range w {
		if err := p.put(KindOrg, w[i].ID, &w[i], lookup(stored, w[i].ID)); err != nil {
			return err
		}
	}
	return nil
}

// planOrgRemoves appends the deletes of stored orgs the file lacks (prune),
// or counts them kept.
func (p *Plan) planOrgRemoves(want, cur []model.Org, prune bool) {
	wanted := map[string]bool{}
	for _, o := range want {
		wanted[o.ID] = true
	}
	c := append([]model.Org(nil), cur...)
	sort.SliceStable(c, func(i, j int) bool { return c[i].ID < c[j].ID })
	for _, o := range c {
		p.remove(KindOrg, o.ID, wanted[o.ID], prune)
	}
}
