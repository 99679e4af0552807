package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/validation"
	"github.com/sluicegw/sluice/syncer/internal/declarative"
)

// maxApplyBody bounds the body of POST /v1/apply: a whole declarative
// configuration.
const maxApplyBody = 32 << 20

// applyRequest is the body of POST /v1/apply: the desired APIs and
// policies and the preconditions of the write.
type applyRequest struct {
	APIs     []model.API    `json:"apis"`
	Policies []model.Policy `json:"policies"`
	// Orgs are the desired orgs (optional: absent is none).
	Orgs []model.Org `json:"orgs,omitempty"`
	// Keys, when present (even empty), are the desired keys, each with its
	// hash (apply_keys.go); absent, stored keys are left alone.
	Keys *[]declarative.Key `json:"keys,omitempty"`
	// Prune deletes stored objects that are not in the request.
	Prune bool `json:"prune,omitempty"`
	// DryRun returns the plan and writes nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// ExpectVersion, when set, is the config version the caller planned
	// against: any other current version refuses the apply (412).
	ExpectVersion *int64 `json:"expect_version,omitempty"`
	// IfMatch maps "kind/id" (api/orders, policy/gold) to the ETag the
	// stored object must have.
	IfMatch map[string]string `json:"if_match,omitempty"`
	// SelectTag limits the apply to the objects carrying this tag: every
	// object of the request must carry it, and only stored objects
	// carrying it are updated or pruned.
	SelectTag string `json:"select_tag,omitempty"`
}

// applyResponse is the answer of POST /v1/apply.
type applyResponse struct {
	DryRun bool `json:"dry_run"`
	// BaseVersion is the config version the plan was made against.
	BaseVersion int64 `json:"base_version"`
	// Version is the config version after the apply (BaseVersion when
	// nothing was written).
	Version int64             `json:"version"`
	Plan    *declarative.Plan `json:"plan"`
	// SecretsUnchecked is set on a plan answered to a token that may not
	// write configuration: secret fields were not compared (plan.go).
	SecretsUnchecked bool `json:"secrets_unchecked,omitempty"`
}

// state is the stored APIs and policies at one version, with the ETag of
// every object.
type state struct {
	version int64
	file    declarative.File
	etags   map[string]string // "kind/id" -> ETag
	keys    keyState          // set when keys were read
	now     time.Time
}

// readState reads the version and every API, policy and org (and, with
// keys, every key) at one version, so the plan is made against one
// version.
func (s *Server) readState(r *http.Request, withKeys bool) (*state, error) {
	snap, err := s.opts.Store.LoadState(r.Context(), withKeys)
	if err != nil {
		return nil, fmt.Errorf("apply: read state: %w", err)
	}
	st := &state{version: snap.Version, etags: snap.ETags, now: s.now().UTC().Truncate(time.Second)}
	st.file.APIs, st.file.Policies, st.file.Orgs = snap.APIs, snap.Policies, snap.Orgs
	if withKeys {
		st.addKeys(snap.Keys)
	}
	st.file.Normalize()
	return st, nil
}

// applyConfig is POST /v1/apply: validate the whole desired set, plan it
// against the stored state, check every precondition and write every
// change with one store.Apply: one config version, one announcement, all
// or nothing. Updates and deletes carry the ETag the plan was made
// against, so a concurrent write to any object the plan touches refuses
// the whole apply (412) instead of being overwritten.
func (s *Server) applyConfig(w http.ResponseWriter, r *http.Request) error {
	return s.applyOrPlan(w, r, false)
}

// applyOrPlan is POST /v1/apply, or POST /v1/plan when planOnly (a dry
// run, whatever the body says; see plan.go).
func (s *Server) applyOrPlan(w http.ResponseWriter, r *http.Request, planOnly bool) error {
	raw, err := readBody(r)
	if err != nil {
		return err
	}
	var req applyRequest
	if errs := decodeStrict(raw, &req); len(errs) > 0 {
		return errs
	}
	req.DryRun = req.DryRun || planOnly
	want := &declarative.File{APIs: req.APIs, Policies: req.Policies, Orgs: req.Orgs}
	if req.Keys != nil {
		want.Keys, want.KeysSet = *req.Keys, true
	}
	st, err := s.readState(r, want.KeysSet)
	if err != nil {
		return err
	}
	var outside *declarative.File
	if req.SelectTag != "" {
		var errs validation.Errors
		if outside, errs = selectTag(want, &st.file, req.SelectTag); len(errs) > 0 {
			return errs
		}
		if want.KeysSet {
			if errs := selectKeyTag(want, &st.file, outside, req.SelectTag); len(errs) > 0 {
				return errs
			}
		}
	}
	if errs := append(want.Validate(), st.checkCertKeys(want)...); len(errs) > 0 {
		return errs
	}
	checkCur, checkPrune := &st.file, req.Prune
	if outside != nil && req.Prune {
		// Prune removes only selected objects: the others are kept.
		checkCur, checkPrune = outside, false
	}
	if errs := want.CheckAgainst(checkCur, checkPrune); len(errs) > 0 {
		return errs
	}
	if outside != nil {
		want.APIs = append(want.APIs, outside.APIs...)
		want.Policies = append(want.Policies, outside.Policies...)
		want.Orgs = append(want.Orgs, outside.Orgs...)
		want.Keys = append(want.Keys, outside.Keys...)
	}
	if err := st.preconditions(&req); err != nil {
		return err
	}
	plan, err := declarative.MakePlan(want, &st.file, req.Prune)
	if err != nil {
		return errorf(http.StatusBadRequest, codeInvalid, "%v", err)
	}
	changes, err := st.changes(plan)
	if err != nil {
		return err
	}
	resp := applyResponse{DryRun: req.DryRun, BaseVersion: st.version, Version: st.version, Plan: plan}
	if planOnly && !mayWrite(r.Context()) {
		withoutSecrets(plan)
		resp.SecretsUnchecked = true
	}
	if !req.DryRun {
		if err := checkKeyIssue(r, plan); err != nil {
			return err
		}
	}
	if req.DryRun || len(changes) == 0 {
		w.Header().Set("Sluice-Config-Version", strconv.FormatInt(st.version, 10))
		writeJSON(w, http.StatusOK, resp)
		return nil
	}
	v, err := s.opts.Store.ApplyAs(r.Context(), actor(r.Context()), changes...)
	if err != nil {
		if errors.Is(err, store.ErrPrecondition) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists) {
			return errorf(http.StatusPreconditionFailed, codePrecondition,
				"%v: the configuration changed while the apply was planned; nothing was written, plan again", err)
		}
		return err
	}
	s.opts.Announcer.Announce(r.Context(), s.opts.Store, v)
	resp.Version = v
	w.Header().Set("Sluice-Config-Version", strconv.FormatInt(v, 10))
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// preconditions checks the caller's expected version and ETags against
// the state read. The ETags of the objects the plan writes are checked
// again inside the write.
func (st *state) preconditions(req *applyRequest) error {
	if req.ExpectVersion != nil && *req.ExpectVersion != st.version {
		return errorf(http.StatusPreconditionFailed, codePrecondition,
			"the config version is %d, not the expected %d: nothing was written, plan again", st.version, *req.ExpectVersion)
	}
	var errs validation.Errors
	for ref, etag := range req.IfMatch {
		kind, id, ok := strings.Cut(ref, "/")
		if !ok || (kind != store.KindAPI && kind != store.KindPolicy && kind != store.KindOrg && kind != store.KindKey) || !model.ValidID(id) {
			errs.Add("if_match."+ref, "must be named api/ID, policy/ID, org/ID or key/ID")
			continue
		}
		cur, found := st.etags[ref]
		if !found {
			errs.Add("if_match."+ref, "%s %s does not exist", kind, id)
		} else if strings.TrimPrefix(etag, "W/") != cur {
			errs.Add("if_match."+ref, "%s %s has ETag %s, not %s", kind, id, cur, etag)
		}
	}
	if len(errs) > 0 {
		e := errorf(http.StatusPreconditionFailed, codePrecondition, "%d object(s) changed since the plan: nothing was written, plan again", len(errs))
		e.Details = errs
		return e
	}
	return nil
}

// changes turns a plan into store changes: creates refuse an existing
// object, updates and deletes require the ETag read, API deletes require
// that no policy grants the API, and every put requires the objects it
// names.
func (st *state) changes(plan *declarative.Plan) ([]store.Change, error) {
	out := make([]store.Change, 0, len(plan.Actions))
	for i := range plan.Actions {
		a := &plan.Actions[i]
		etag := st.etags[a.Kind+"/"+a.ID]
		if a.Op != declarative.OpCreate {
			a.ETag = etag
		}
		c := store.Change{Kind: a.Kind, ID: a.ID, Op: store.OpPut}
		switch a.Op {
		case declarative.OpCreate:
			c.Create = true
		case declarative.OpUpdate:
			c.IfMatch = etag
		case declarative.OpDelete:
			c.Op, c.IfMatch, c.IfUnused = store.OpDelete, etag, a.Kind == store.KindAPI || a.Kind == store.KindOrg
			out = append(out, c)
			continue
		}
		var err error
		switch obj := a.Object.(type) {
		case *model.API:
			c.Body, err = json.Marshal(obj)
		case *model.Policy:
			if obj.Access == nil {
				obj.Access = []model.AccessRight{}
			}
			c.Refs = store.PolicyRefs(obj)
			c.Body, err = json.Marshal(obj)
		case *model.Org:
			c.Body, err = json.Marshal(obj)
		case *declarative.Key:
			err = st.keyChange(&c, obj)
		default:
			err = fmt.Errorf("unexpected object %T", a.Object)
		}
		if err != nil {
			return nil, fmt.Errorf("apply: encode %s %s: %w", a.Kind, a.ID, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// selectTag checks that every desired object carries tag and that none
// takes the id of a stored object without it, and returns the stored
// objects without the tag: outside the selection, they are neither updated
// nor pruned.
func selectTag(want, cur *declarative.File, tag string) (*declarative.File, validation.Errors) {
	var errs validation.Errors
	if !model.ValidTag(tag) {
		errs.Add("select_tag", "%.70q is not a tag", tag)
		return nil, errs
	}
	curAPIs := map[string][]string{}
	for _, a := range cur.APIs {
		curAPIs[a.ID] = a.Tags
	}
	curPols := map[string][]string{}
	for _, p := range cur.Policies {
		curPols[p.ID] = p.Tags
	}
	check := func(field, kind, id string, tags []string, stored map[string][]string) {
		if !model.HasTag(tags, tag) {
			errs.Add(field+".tags", "lacks the selected tag %q", tag)
		}
		if have, ok := stored[id]; ok && !model.HasTag(have, tag) {
			errs.Add(field+".id", "%s %s is stored without tag %q: it is outside the selection", kind, id, tag)
		}
	}
	for i, a := range want.APIs {
		check(validation.Index("apis", i), "api", a.ID, a.Tags, curAPIs)
	}
	for i, p := range want.Policies {
		check(validation.Index("policies", i), "policy", p.ID, p.Tags, curPols)
	}
	curOrgs := map[string][]string{}
	for _, o := range cur.Orgs {
		curOrgs[o.ID] = o.Tags
	}
	for i, o := range want.Orgs {
		check(validation.Index("orgs", i), "org", o.ID, o.Tags, curOrgs)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	out := &declarative.File{}
	for _, a := range cur.APIs {
		if !model.HasTag(a.Tags, tag) {
			out.APIs = append(out.APIs, a)
		}
	}
	for _, p := range cur.Policies {
		if !model.HasTag(p.Tags, tag) {
			out.Policies = append(out.Policies, p)
		}
	}
	for _, o := range cur.Orgs {
		if !model.HasTag(o.Tags, tag) {
			out.Orgs = append(out.Orgs, o)
		}
	}
	return out, nil
}
