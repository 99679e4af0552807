package model

import "github.com/sluicegw/sluice/pkg/validation"

// Org is a tenant: keys name it (Key.Org), and its rate limit and quota
// count across all of its keys and every API they call, under the org's
// own hash tag (store.Layout.OrgCounterPrefix). They apply besides the
// keys' own limits and quotas: a request is admitted only when every one
// of them allows it.
type Org struct {
	ID   string `json:"id" yaml:"id"`
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// RateLimit counts every request (or unit) of the org's keys. It is
	// exact: mode lease is refused (docs/limits.md, "Orgs").
	RateLimit *Limit `json:"rate_limit,omitempty" yaml:"rate_limit,omitempty"`
	// Quota counts every request (or unit) of the org's keys in a period.
	Quota *Quota `json:"quota,omitempty" yaml:"quota,omitempty"`
	// Tags label the org, as API.Tags.
	Tags []string `json:"tags,omitempty" yaml:"tags,omitempty"`
}

// Validate returns every problem with the org on its own.
func (o *Org) Validate() validation.Errors {
	var errs validation.Errors
	checkID(&errs, "id", o.ID)
	checkTags(&errs, "tags", o.Tags)
	if l := o.RateLimit; l != nil {
		validateIdentityLimit(&errs, "rate_limit", l)
		if l.Scope != "" {
			errs.Add("rate_limit.scope", "an org's limit counts across all its keys and APIs: it takes no scope")
		}
		if l.Mode == LimitLease {
			errs.Add("rate_limit.mode", "an org's limit is exact: lease mode is for per-API counters")
		}
	}
	if q := o.Quota; q != nil {
		errs.Merge("quota", q.Validate())
		if q.Scope != "" {
			errs.Add("quota.scope", "an org's quota counts across all its keys and APIs: it takes no scope")
		}
	}
	return errs
}
