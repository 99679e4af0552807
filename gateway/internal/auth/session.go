package auth

import (
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
)

// Session is a key merged with its policies, as the request path needs it.
// It is immutable once built and shared by every request of the key.
//
// The merge rule:
//   - Access: when the key has its own access rights they replace those of
//     its policies; otherwise the key's access is the union of its policies'
//     rights. A request is allowed when any right for its API allows both the
//     method and the path (relative to the listen path).
//   - Rate limit: when the key has its own rate_limit it is the only one
//     (counter store.KeyRateCounter); otherwise every policy with a
//     rate_limit counts separately for this key (store.PolicyRateCounter).
//   - Quota: the same rule with the key's or the policies' quota (counters
//     store.KeyQuotaCounter and store.PolicyQuotaCounter).
//   - A policy's limit and quota apply to the APIs the policy grants access
//     to; a policy without access rights, or any policy of a key whose own
//     access rights replace the policies', applies to every API the key may
//     call. A key's own limit and quota apply to every API it may call.
//   - Policies the key names that do not exist grant nothing and limit
//     nothing.
//
// Counters are scoped per API by the limiter (model package comment), so a
// key calling two APIs has separate counters on each; a limit or quota
// with scope "key" (KeyScope) has one counter across them all, under the
// key's own hash tag (store.Layout.KeyCounterPrefix).
type Session struct {
	KeyID    string
	Alias    string // the key record's alias, "" when none
	Hash     string // hex SHA-256 of the key
	Policies []string
	// Org is the org the key belongs to ("" none): the org's limits,
	// found in the node's snapshot at each request, count it too.
	Org      string
	Disabled bool
	expires  time.Time // zero: never
	access   map[string][]right
	Limits   []SessionLimit
	Quotas   []SessionQuota

	// Cert: the record is a client certificate's (model.Key.Certificate),
	// usable only by a TLS client presenting that certificate.
	Cert bool
}

type right struct {
	methods []string
	paths   []*model.Pattern // empty: every path
}

// SessionLimit is one rate limit the key is subject to.
type SessionLimit struct {
	// Key is the counter id: within an API, or within the key's own
	// counters when KeyScope is set.
	Key   string
	Name  string // short name for RateLimit-Policy
	Limit model.Limit
	// KeyScope is the key hash when the limit counts across every API the
	// key calls (scope: key), else "".
	KeyScope string
	apis     map[string]bool // nil: every API
}

// SessionQuota is one quota the key is subject to.
type SessionQuota struct {
	Key      string
	Name     string
	Quota    model.Quota
	KeyScope string // as SessionLimit.KeyScope
	apis     map[string]bool
}

// AppliesTo reports whether the limit counts on api.
func (l *SessionLimit) AppliesTo(api string) bool { return l.apis == nil || l.apis[api] }

// AppliesTo reports whether the quota counts on api.
func (q *SessionQuota) AppliesTo(api string) bool { return q.apis == nil || q.apis[api] }

// NewSession merges k with its policies, found by id in policies.
func NewSession(k *model.Key, policies map[string]*model.Policy) *Session {
	s := &Session{KeyID: k.ID, Alias: k.Alias, Hash: k.Hash, Policies: k.Policies, Org: k.Org, Disabled: k.Disabled, access: map[string][]right{}}
	s.Cert = k.Certificate != nil
	if k.ExpiresAt != nil {
		s.expires = *k.ExpiresAt
	}
	var pols []*model.Policy
	for _, id := range k.Policies {
		if p := policies[id]; p != nil {
			pols = append(pols, p)
		}
	}
	if len(k.Access) > 0 {
		s.addAccess(k.Access)
	} else {
		for _, p := range pols {
			s.addAccess(p.Access)
		}
	}
	scope := func(p *model.Policy) map[string]bool {
		if len(k.Access) > 0 || len(p.Access) == 0 {
			return nil
		}
		m := map[string]bool{}
		for _, ar := range p.Access {
			m[ar.API] = true
		}
		return m
	}
	keyScope := func(scope string) string {
		if scope == model.ScopeKey {
			return k.Hash
		}
		return ""
	}
	if k.RateLimit != nil {
		s.Limits = append(s.Limits, SessionLimit{Key: store.KeyRateCounter(k.Hash), Name: "key", Limit: *k.RateLimit, KeyScope: keyScope(k.RateLimit.Scope)})
	} else {
		for _, p := range pols {
			if p.RateLimit != nil {
				s.Limits = append(s.Limits, SessionLimit{Key: store.PolicyRateCounter(p.ID, k.Hash), Name: "policy-" + p.ID, Limit: *p.RateLimit, KeyScope: keyScope(p.RateLimit.Scope), apis: scope(p)})
			}
		}
	}
	if k.Quota != nil {
		s.Quotas = append(s.Quotas, SessionQuota{Key: store.KeyQuotaCounter(k.Hash), Name: "key-quota", Quota: *k.Quota, KeyScope: keyScope(k.Quota.Scope)})
	} else {
		for _, p := range pols {
			if p.Quota != nil {
				s.Quotas = append(s.Quotas, SessionQuota{Key: store.PolicyQuotaCounter(p.ID, k.Hash), Name: "policy-" + p.ID + "-quota", Quota: *p.Quota, KeyScope: keyScope(p.Quota.Scope), apis: scope(p)})
			}
		}
	}
	return s
}

func (s *Session) addAccess(rights []model.AccessRight) {
	for _, ar := range rights {
		r := right{methods: ar.Methods}
		for _, p := range ar.Paths {
			if cp, err := model.CompilePattern(p); err == nil {
				r.paths = append(r.paths, cp)
			}
		}
		if len(ar.Paths) > 0 && len(r.paths) == 0 {
			continue // every path pattern invalid: grant nothing rather than everything
		}
		s.access[ar.API] = append(s.access[ar.API], r)
	}
}

// Usable returns ErrDisabled or ErrExpired when the key cannot be used at now.
func (s *Session) Usable(now time.Time) error {
	if s.Disabled {
		return ErrDisabled
	}
	if !s.expires.IsZero() && !now.Before(s.expires) {
		return ErrExpired
	}
	return nil
}

// Allowed reports whether the session may call api with method on rest, the
// path relative to the API's listen path.
func (s *Session) Allowed(api string, method, rest []byte) bool {
	for _, r := range s.access[api] {
		if !model.MethodAllowed(r.methods, method) {
			continue
		}
		if len(r.paths) == 0 {
			return true
		}
		for _, p := range r.paths {
			if p.Match(rest) {
				return true
			}
		}
	}
	return false
}

// HoldsPolicy reports whether the key names policy id.
func (s *Session) HoldsPolicy(id string) bool {
	for _, p := range s.Policies {
		if p == id {
			return true
		}
	}
	return false
}
