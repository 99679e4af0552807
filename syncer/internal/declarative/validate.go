package declarative

import (
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/validation"
)

// Validate returns every problem of the file on its own, each with its
// path (apis[2].listen_path): invalid objects, duplicate ids and listen
// paths clashing between the file's APIs.
func (f *File) Validate() validation.Errors {
	var errs validation.Errors
	apiIdx := map[string]int{}
	for i := range f.APIs {
		a := &f.APIs[i]
		p := validation.Index("apis", i)
		errs.Merge(p, a.Validate())
		if j, ok := apiIdx[a.ID]; ok && a.ID != "" {
			errs.Add(p+".id", "duplicate id %q (also apis[%d])", a.ID, j)
		} else {
			apiIdx[a.ID] = i
		}
	}
	errs = append(errs, clashes(f.APIs, "apis", nil)...)
	polIdx := map[string]int{}
	for i := range f.Policies {
		pol := &f.Policies[i]
		p := validation.Index("policies", i)
		errs.Merge(p, pol.Validate())
		if j, ok := polIdx[pol.ID]; ok && pol.ID != "" {
			errs.Add(p+".id", "duplicate id %q (also policies[%d])", pol.ID, j)
		} else {
			polIdx[pol.ID] = i
		}
	}
	f.validateOrgs(&errs)
	return append(errs, f.validateKeys()...)
}

// clashes reports the listen-path clashes of apis (the file's, at field
// prefix) among themselves and with others (stored APIs that stay), each
// at the path of the file's API that clashes.
func clashes(apis []model.API, prefix string, others []model.API) validation.Errors {
	var errs validation.Errors
	all := append(append([]model.API(nil), others...), apis...)
	at, problems := model.ListenPathClashesAt(all)
	for j, p := range problems {
		if i := at[j] - len(others); i >= 0 {
			errs.Add(validation.Index(prefix, i)+"."+p.Field, "%s", p.Message)
		}
	}
	return errs
}

// CheckAgainst returns the problems of applying f over the stored state
// cur: policies granting APIs that will not exist, and listen paths
// clashing with stored APIs the file keeps (all of them unless prune).
func (f *File) CheckAgainst(cur *File, prune bool) validation.Errors {
	var errs validation.Errors
	inFile := map[string]bool{}
	for _, a := range f.APIs {
		inFile[a.ID] = true
	}
	exists := map[string]bool{}
	for id := range inFile {
		exists[id] = true
	}
	var kept []model.API
	if !prune {
		for _, a := range cur.APIs {
			if !inFile[a.ID] {
				kept = append(kept, a)
				exists[a.ID] = true
			}
		}
	}
	if len(kept) > 0 {
		// Clashes among the file's own APIs are Validate's to report.
		own := map[validation.Problem]bool{}
		for _, p := range clashes(f.APIs, "apis", nil) {
			own[p] = true
		}
		for _, p := range clashes(f.APIs, "apis", kept) {
			if !own[p] {
				errs = append(errs, p)
			}
		}
	}
	for i, pol := range f.Policies {
		for j, ar := range pol.Access {
			if !exists[ar.API] {
				errs.Add(validation.Index(validation.Index("policies", i)+".access", j)+".api",
					"unknown API %q: it is neither in the file nor stored", ar.API)
			}
		}
	}
	if f.KeysSet {
		errs = append(errs, f.checkKeysAgainst(cur, prune)...)
	}
	return errs
}
