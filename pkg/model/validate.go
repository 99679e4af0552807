package model

import (
	"regexp"
	"strings"

	"github.com/sluicegw/sluice/pkg/validation"
)

var idRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)

var knownMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
	"DELETE": true, "OPTIONS": true, "CONNECT": true, "TRACE": true, "*": true,
}

// ValidID reports whether s can name an API or policy: 1-64 characters of
// letters, digits, '_', '.', '-', starting with a letter or digit. IDs appear
// in Redis keys and NATS subjects, so nothing else is allowed.
func ValidID(s string) bool { return idRE.MatchString(s) }

func checkID(errs *validation.Errors, field, id string) {
	if !ValidID(id) {
		errs.Add(field, "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
	}
}

// MaxTags bounds the tags of one object.
const MaxTags = 32

// ValidTag reports whether t is a tag: 1-63 lower-case letters, digits,
// '-', '_' or '.', starting with a letter or digit.
func ValidTag(t string) bool {
	if len(t) == 0 || len(t) > 63 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '-' && c != '_' && c != '.')) {
			return false
		}
	}
	return true
}

// HasTag reports whether tags holds t.
func HasTag(tags []string, t string) bool {
	for _, x := range tags {
		if x == t {
			return true
		}
	}
	return false
}

func checkTags(errs *validation.Errors, field string, tags []string) {
	if len(tags) > MaxTags {
		errs.Add(field, "at most %d tags, got %d", MaxTags, len(tags))
	}
	seen := map[string]bool{}
	for i, t := range tags {
		switch {
		case !ValidTag(t):
			errs.Add(validation.Index(field, i), "%.70q is not a tag: 1-63 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit", t)
		case seen[t]:
			errs.Add(validation.Index(field, i), "duplicate tag %q", t)
		}
		seen[t] = true
	}
}

func checkMethods(errs *validation.Errors, field string, methods []string) {
	for i, m := range methods {
		if !knownMethods[m] {
			errs.Add(validation.Index(field, i), "unknown HTTP method %q (use upper case, or *)", m)
		}
	}
}

func checkPattern(errs *validation.Errors, field, p string) {
	if _, err := CompilePattern(p); err != nil {
		errs.Add(field, "%v", err)
	}
}

// Validate returns every problem with the limit, fields relative to it.
func (l *Limit) Validate() validation.Errors {
	var errs validation.Errors
	if l.Rate <= 0 {
		errs.Add("rate", "must be a positive number of requests")
	}
	if l.Per.D() <= 0 {
		errs.Add("per", "must be a positive duration, like 1s or 1m")
	}
	if l.Burst < 0 {
		errs.Add("burst", "must not be negative")
	}
	switch l.Mode {
	case "", LimitExact, LimitLease:
	default:
		errs.Add("mode", "must be %q or %q", LimitExact, LimitLease)
	}
	seen := map[string]bool{}
	for i, by := range l.LimitBy {
		f := validation.Index("limit_by", i)
		switch {
		case by == LimitByClientIP, by == LimitByKey:
		case strings.HasPrefix(by, LimitByHeader):
			if !validHeaderName(by[len(LimitByHeader):]) {
				errs.Add(f, "header:<name> needs an HTTP header name (RFC 9110 token), got %q", by)
			}
		case strings.HasPrefix(by, LimitByClaim):
			if c := by[len(LimitByClaim):]; c == "" || len(c) > 128 {
				errs.Add(f, "claim:<name> needs a claim name of 1-128 characters, got %q", by)
			}
		default:
			errs.Add(f, "must be %q, %q, \"header:<name>\" or \"claim:<name>\", got %q", LimitByClientIP, LimitByKey, by)
		}
		k := strings.ToLower(by)
		if strings.HasPrefix(by, LimitByClaim) {
			k = by
		}
		if seen[k] {
			errs.Add(f, "%q is named twice", by)
		}
		seen[k] = true
	}
	switch l.OnMissing {
	case "", OnMissingRefuse, OnMissingShared:
	default:
		errs.Add("on_missing", "must be %q or %q", OnMissingRefuse, OnMissingShared)
	}
	if l.OnMissing != "" && len(l.LimitBy) == 0 {
		errs.Add("on_missing", "applies only with limit_by")
	}
	checkScope(&errs, l.Scope)
	if u := l.Units; u != nil {
		errs.Merge("units", u.Validate())
		if l.Mode == LimitLease {
			errs.Add("mode", "a limit counting units is exact: lease mode counts requests")
		}
		b := l.EffectiveBurst()
		for _, f := range []struct {
			name string
			v    int64
		}{{"units.cost", u.Cost}, {"units.max", u.Max}, {"units.reserve", u.Reserve}} {
			if f.v > b && b > 0 {
				errs.Add(f.name, "%d is more than the limit's burst (%d units): such a request could never be admitted", f.v, b)
			}
		}
	}
	if l.Scope == ScopeKey && l.Mode == LimitLease {
		errs.Add("mode", "a limit with scope key is exact: lease mode is for per-API counters")
	}
	return errs
}

// Validate returns every problem with the units settings.
func (u *Units) Validate() validation.Errors {
	var errs validation.Errors
	switch u.From {
	case UnitsFixed:
		if u.Cost <= 0 {
			errs.Add("cost", "must be a positive number of units")
		}
	case UnitsRequestHeader, UnitsResponseHeader:
		if !validHeaderName(u.Header) {
			errs.Add("header", "must be an HTTP header name (RFC 9110 token), got %q", u.Header)
		}
	case UnitsResponseJSON:
		if u.Path == "" || strings.HasPrefix(u.Path, ".") || strings.HasSuffix(u.Path, ".") || strings.Contains(u.Path, "..") {
			errs.Add("path", "must be a dotted JSON path like usage.total_tokens, got %q", u.Path)
		}
	default:
		errs.Add("from", "must be %q, %q, %q or %q", UnitsFixed, UnitsRequestHeader, UnitsResponseHeader, UnitsResponseJSON)
	}
	if u.From == UnitsRequestHeader && u.Max <= 0 {
		errs.Add("max", "must be a positive bound on the cost a request may declare")
	}
	if u.FromResponse() && u.Reserve <= 0 {
		errs.Add("reserve", "must be a positive number of units reserved before forwarding")
	}
	return errs
}

// checkLimitBy refuses limit_by values the API can never have: a key on a
// keyless API, a claim on an API that takes no token.
func (a *API) checkLimitBy(errs *validation.Errors, field string, l *Limit) {
	for i, by := range l.LimitBy {
		switch {
		case by == LimitByKey && a.Auth.Mode == AuthKeyless:
			errs.Add(validation.Index(field+".limit_by", i), "a keyless API has no key to count by (use client_ip or a header)")
		case strings.HasPrefix(by, LimitByClaim) && a.Auth.JWT == nil:
			errs.Add(validation.Index(field+".limit_by", i), "this API takes no token: there is no claim to count by")
		}
	}
}

func checkScope(errs *validation.Errors, scope string) {
	switch scope {
	case "", ScopeAPI, ScopeKey:
	default:
		errs.Add("scope", "must be %q or %q", ScopeAPI, ScopeKey)
	}
}

// validateAPILimit adds the rules of a limit on an API or endpoint: it
// counts on that API, so it takes no scope.
func validateAPILimit(errs *validation.Errors, field string, l *Limit) {
	errs.Merge(field, l.Validate())
	if l.Scope != "" {
		errs.Add(field+".scope", "applies to a policy's or key's limit; an API or endpoint limit counts on its API (use limit_by to count per client)")
	}
}

// validateIdentityLimit adds the rules of a policy's or key's limit: it
// counts per identity already, so it takes no limit_by.
func validateIdentityLimit(errs *validation.Errors, field string, l *Limit) {
	errs.Merge(field, l.Validate())
	if len(l.LimitBy) > 0 {
		errs.Add(field+".limit_by", "applies to an API's or endpoint's limit; a policy's or key's limit counts per key already")
	}
}

// Validate returns every problem with the quota, fields relative to it.
func (q *Quota) Validate() validation.Errors {
	var errs validation.Errors
	if q.Max <= 0 {
		errs.Add("max", "must be a positive number of requests")
	}
	if q.Renewal.D() <= 0 {
		errs.Add("renewal", "must be a positive duration, like 1h or 720h")
	}
	checkScope(&errs, q.Scope)
	if u := q.Units; u != nil {
		errs.Merge("units", u.Validate())
		for _, f := range []struct {
			name string
			v    int64
		}{{"units.cost", u.Cost}, {"units.max", u.Max}, {"units.reserve", u.Reserve}} {
			if f.v > q.Max && q.Max > 0 {
				errs.Add(f.name, "%d is more than the quota's max (%d units): such a request could never be admitted", f.v, q.Max)
			}
		}
	}
	return errs
}

// Validate returns every problem with the API definition on its own.
// Clashes with other APIs are checked by ListenPathClashes.
func (a *API) Validate() validation.Errors {
	var errs validation.Errors
	checkID(&errs, "id", a.ID)
	checkTags(&errs, "tags", a.Tags)
	for i, h := range a.Hosts {
		if h == "" || strings.ContainsAny(h, "/ ") {
			errs.Add(validation.Index("hosts", i), "must be a host name, optionally with :port")
		}
	}
	if err := CheckListenPath(a.ListenPath); err != nil {
		errs.Add("listen_path", "%v", err)
	}
	if len(a.Upstream.Targets) == 0 {
		errs.Add("upstream.targets", "at least one target is required")
	}
	for i, t := range a.Upstream.Targets {
		checkTarget(&errs, validation.Index("upstream.targets", i), t)
	}
	for name, d := range map[string]Duration{"connect_timeout": a.Upstream.ConnectTimeout, "read_timeout": a.Upstream.ReadTimeout, "write_timeout": a.Upstream.WriteTimeout} {
		if d < 0 {
			errs.Add("upstream."+name, "must not be negative")
		}
	}
	// auth.jwt is required by mode jwt; with mode api_key it makes the API
	// take an API key or a JWT, whichever the request presents first (the
	// key in its header or query parameter, then a bearer JWT, then a bearer
	// key). Either way its settings must be valid.
	switch a.Auth.Mode {
	case AuthAPIKey:
	case AuthKeyless:
		if a.Auth.JWT != nil {
			errs.Add("auth.jwt", "a keyless API takes no token: remove auth.jwt or use mode jwt or api_key")
		}
	case AuthJWT:
		if a.Auth.JWT == nil {
			errs.Add("auth.jwt", "required when mode is jwt")
		}
	case AuthMTLS:
		if a.Auth.JWT != nil {
			errs.Add("auth.jwt", "an mtls API takes only client certificates: remove auth.jwt or use mode api_key")
		}
	default:
		errs.Add("auth.mode", "must be %q, %q, %q or %q", AuthKeyless, AuthAPIKey, AuthJWT, AuthMTLS)
	}
	if a.Auth.Header != "" && !validHeaderName(a.Auth.Header) {
		errs.Add("auth.header", "must be an HTTP header name (RFC 9110 token), got %q", a.Auth.Header)
	}
	a.validateTLS(&errs)
	if a.Auth.JWT != nil {
		errs.Merge("auth.jwt", a.Auth.JWT.Validate())
		keyHeader := a.Auth.EffectiveHeader()
		for _, claim := range sortedKeys(a.Auth.JWT.ForwardClaims) {
			if h := a.Auth.JWT.ForwardClaims[claim]; claim != "" && strings.EqualFold(h, keyHeader) {
				errs.Add("auth.jwt.forward_claims."+claim, "header %q carries this API's keys (auth.header); choose another name", h)
			}
		}
	}
	if a.RateLimit != nil {
		validateAPILimit(&errs, "rate_limit", a.RateLimit)
		a.checkLimitBy(&errs, "rate_limit", a.RateLimit)
	}
	for i, e := range a.Endpoints {
		f := validation.Index("endpoints", i)
		checkMethods(&errs, f+".methods", e.Methods)
		checkPattern(&errs, f+".path", e.Path)
		if e.RateLimit != nil {
			validateAPILimit(&errs, f+".rate_limit", e.RateLimit)
			a.checkLimitBy(&errs, f+".rate_limit", e.RateLimit)
		}
	}
	switch a.OnStoreError {
	case "", StoreErrorOpen, StoreErrorClosed:
	default:
		errs.Add("on_store_error", "must be %q or %q", StoreErrorOpen, StoreErrorClosed)
	}
	if a.MaxBodyBytes < 0 {
		errs.Add("max_body_bytes", "must not be negative")
	}
	if a.Streaming != nil {
		errs.Merge("streaming", a.Streaming.Validate())
	}
	validateUpgrades(&errs, a.Upgrades)
	return errs
}

func validateAccess(errs *validation.Errors, field string, access []AccessRight) {
	for i, ar := range access {
		f := validation.Index(field, i)
		checkID(errs, f+".api", ar.API)
		checkMethods(errs, f+".methods", ar.Methods)
		for j, p := range ar.Paths {
			checkPattern(errs, validation.Index(f+".paths", j), p)
		}
	}
}

// Validate returns every problem with the policy on its own. Whether the
// APIs it names exist is checked by the caller that knows them.
func (p *Policy) Validate() validation.Errors {
	var errs validation.Errors
	checkID(&errs, "id", p.ID)
	checkTags(&errs, "tags", p.Tags)
	validateAccess(&errs, "access", p.Access)
	if p.RateLimit != nil {
		validateIdentityLimit(&errs, "rate_limit", p.RateLimit)
	}
	if p.Quota != nil {
		errs.Merge("quota", p.Quota.Validate())
	}
	return errs
}

// Validate returns every problem with the key on its own.
func (k *Key) Validate() validation.Errors {
	var errs validation.Errors
	checkID(&errs, "id", k.ID)
	checkTags(&errs, "tags", k.Tags)
	if len(k.Hash) != 64 || strings.Trim(k.Hash, "0123456789abcdef") != "" {
		errs.Add("hash", "must be the lowercase hex SHA-256 of the key")
	}
	k.validateCertificate(&errs)
	if len(k.Policies) == 0 && len(k.Access) == 0 {
		errs.Add("policies", "a key needs at least one policy or its own access rights")
	}
	for i, p := range k.Policies {
		checkID(&errs, validation.Index("policies", i), p)
	}
	validateAccess(&errs, "access", k.Access)
	if k.RateLimit != nil {
		validateIdentityLimit(&errs, "rate_limit", k.RateLimit)
	}
	if k.Quota != nil {
		errs.Merge("quota", k.Quota.Validate())
	}
	if k.Org != "" {
		checkID(&errs, "org", k.Org)
	}
	return errs
}

// ListenPathClashes returns a problem for every pair of APIs that share a
// host (or both answer any host) and the same listen path.
func ListenPathClashes(apis []API) validation.Errors {
	_, errs := ListenPathClashesAt(apis)
	return errs
}

// ListenPathClashesAt is ListenPathClashes also returning, for each
// problem, the index in apis of the API it was found at (the later of the
// two): one pass, however many APIs.
func ListenPathClashesAt(apis []API) ([]int, validation.Errors) {
	var errs validation.Errors
	var at []int
	seen := map[string]string{}
	for i, a := range apis {
		hosts := a.Hosts
		if len(hosts) == 0 {
			hosts = []string{""}
		}
		lp := strings.TrimSuffix(a.ListenPath, "/")
		for _, h := range hosts {
			k := strings.ToLower(h) + " " + lp
			if other, ok := seen[k]; ok && other != a.ID {
				errs.Add("listen_path", "API %q and API %q both listen on host %q path %q", other, a.ID, h, a.ListenPath)
				at = append(at, i)
				continue
			}
			seen[k] = a.ID
		}
	}
	return at, errs
}
