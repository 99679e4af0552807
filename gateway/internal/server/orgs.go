package server

import (
	"github.com/sluicegw/sluice/gateway/internal/limit"
	"github.com/sluicegw/sluice/gateway/internal/state"
)

// orgLimits adds the rate limit and quota of the key's org to the
// decision, counted under the org's own hash tag across all its keys and
// APIs. An org the snapshot does not hold (deleted, or not synced yet)
// limits nothing.
func orgLimits(req *limit.Request, o *state.Org) {
	if o == nil {
		return
	}
	if o.RateLimit != nil {
		req.Rules = append(req.Rules, limit.Rule{Key: o.LimitKey, Name: "org", Limit: *o.RateLimit, OrgScope: o.ID})
	}
	if o.Quota != nil {
		req.Quotas = append(req.Quotas, limit.QuotaRule{Key: o.QuotaKey, Name: "org-quota", Quota: *o.Quota, OrgScope: o.ID})
	}
}
