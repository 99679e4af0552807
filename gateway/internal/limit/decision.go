package limit

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
)

// Rule is one rate limit that applies to a request.
type Rule struct {
	// Key is the counter id (pkg/store counters.go), e.g. "api",
	// "p:gold:k:<hash>", "e:0:k:<hash>". The Redis key is
	// Options.Layout.CounterPrefix(api) + Key, or a key's or an org's
	// prefix (KeyScope, OrgScope) + Key.
	Key string
	// Name is the short policy name reported in RateLimit-Policy, e.g.
	// "api", "policy-gold", "key", "endpoint-0".
	Name  string
	Limit model.Limit
	// KeyScope, when set (a key hash), puts the counter among the key's
	// own, counted across every API: store.Layout.KeyCounterPrefix(KeyScope) +
	// Key. Such rules are exact.
	KeyScope string
	// OrgScope, when set (an org id), puts the counter among the org's
	// own, counted across all of the org's keys and every API:
	// store.Layout.OrgCounterPrefix(OrgScope) + Key. Such rules are exact.
	OrgScope string
	// Cost is the units this request counts (0: 1, a request). A rule
	// with a cost other than 1 is exact.
	Cost int64
	// Reserve marks Cost as a reservation, settled by Limiter.Settle
	// once the actual cost is known.
	Reserve bool
	// Actual is the cost a reserving rule settles at (Settle).
	Actual int64
}

func (r *Rule) cost() int64 { return max(r.Cost, 1) }

// settles reports whether Settle changes the rule's counter.
func (r *Rule) settles() bool { return r.Reserve && r.Actual != r.cost() }

// QuotaRule is one quota that applies to a request.
type QuotaRule struct {
	Key   string
	Name  string
	Quota model.Quota
	// KeyScope and OrgScope are as in Rule. Such quotas are never leased.
	KeyScope string
	OrgScope string
	// Cost is as Rule.Cost; a quota with a cost other than 1 is exact.
	Cost int64
	// Reserve and Actual are as in Rule: Cost is a reservation, settled
	// at Actual by Limiter.Settle. Such quotas are never leased.
	Reserve bool
	Actual  int64
}

// scoped reports whether the quota counts outside its API's slot.
func (q *QuotaRule) scoped() bool { return q.KeyScope != "" || q.OrgScope != "" }

func (q *QuotaRule) cost() int64 { return max(q.Cost, 1) }

// settles reports whether Settle changes the quota's counter.
func (q *QuotaRule) settles() bool { return q.Reserve && q.Actual != q.cost() }

// Request is everything one decision needs. The limiter reads it only
// during Check; callers may reuse it afterwards.
type Request struct {
	APIID  string
	Rules  []Rule
	Quotas []QuotaRule
	// FailOpen is true when the API serves on store errors
	// (on_store_error: open, the default).
	FailOpen bool

	part bool // one slot's part of a decision split across slots (split.go)
}

// ErrInvalidLimit is returned for a rule or quota that cannot be enforced.
var ErrInvalidLimit = errors.New("invalid limit")

// Validate reports whether the limiter can enforce every rule and quota.
func (r *Request) Validate() error {
	for i := range r.Rules {
		l := &r.Rules[i].Limit
		if l.Rate <= 0 || l.Per.D() < time.Microsecond || l.Burst < 0 || ((r.Rules[i].KeyScope != "" || r.Rules[i].OrgScope != "") && l.Mode == model.LimitLease) {
			return fmt.Errorf("rule %s: %w: rate and per must be positive", r.Rules[i].Name, ErrInvalidLimit)
		}
	}
	for i := range r.Quotas {
		q := &r.Quotas[i].Quota
		if q.Max <= 0 || q.Renewal.D() < time.Millisecond {
			return fmt.Errorf("quota %s: %w: max and renewal must be positive", r.Quotas[i].Name, ErrInvalidLimit)
		}
	}
	return nil
}

// Outcome is what a decision says about a request.
type Outcome uint8

// Outcomes.
const (
	Allowed     Outcome = iota
	Limited             // a limit or quota refused it: 429
	Unavailable         // the store is unreachable and the API fails closed: 503
)

func (o Outcome) String() string {
	switch o {
	case Allowed:
		return "allowed"
	case Limited:
		return "limited"
	case Unavailable:
		return "unavailable"
	}
	return "unknown"
}

// Reasons a request is Limited.
const (
	ReasonRate  = "rate"
	ReasonQuota = "quota"
)

// Decision is the result of Check. The zero value allows and carries no
// rate-limit headers.
type Decision struct {
	Outcome Outcome
	// Reason is ReasonRate or ReasonQuota when Limited.
	Reason string
	// Fallback is true when the per-node fallback limiter decided, because
	// the store was unreachable and the API fails open.
	Fallback bool
	// ShadowLimited is true when a shadow rule would have refused.
	ShadowLimited bool
	// RetryAfter is when to try again (Limited, Unavailable).
	RetryAfter time.Duration
	// Err says why a request could not be decided (Unavailable only).
	Err error

	// The most restrictive limit (HasLimit): the one that refused, or the
	// one with the fewest remaining requests.
	HasLimit  bool
	Policy    string        // its Rule.Name or QuotaRule.Name
	Limit     int64         // rate per Window, or quota max
	Window    time.Duration // rule period, or quota renewal
	Remaining int64
	Reset     time.Duration // until the allowance is whole again (rules) or renews (quotas)

	// at is the Redis time (us) each part of the decision was taken at
	// (split.go; on one Redis, or undivided, all is partAPI's), 0 for a
	// part Redis did not take: what Settle adjusts.
	at [nParts]int64

	buf [128]byte
}

func (d *Decision) reset() {
	d.Outcome, d.Reason, d.Fallback, d.ShadowLimited = Allowed, "", false, false
	d.RetryAfter, d.Err, d.HasLimit, d.Policy = 0, nil, false, ""
	d.Limit, d.Window, d.Remaining, d.Reset, d.at = 0, 0, 0, 0, [nParts]int64{}
}

// setLimit records the most restrictive limit, index i over rules then
// quotas (0-based).
func (d *Decision) setLimit(req *Request, i int, remaining int64, reset time.Duration) {
	switch {
	case i < 0 || i >= len(req.Rules)+len(req.Quotas):
		return
	case i < len(req.Rules):
		r := &req.Rules[i]
		d.Policy, d.Limit, d.Window = r.Name, r.Limit.Rate, r.Limit.Per.D()
	default:
		q := &req.Quotas[i-len(req.Rules)]
		d.Policy, d.Limit, d.Window = q.Name, q.Quota.Max, q.Quota.Renewal.D()
	}
	if remaining > d.Limit {
		remaining = d.Limit
	}
	if remaining < 0 {
		remaining = 0
	}
	d.HasLimit, d.Remaining, d.Reset = true, remaining, reset
}
