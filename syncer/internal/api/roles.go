package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/sluicegw/sluice/pkg/tokens"
)

// AdminTokenName is the name of the configuration's admin_token in the
// audit trail.
const AdminTokenName = "admin-token"

// anonymousActor is the actor of writes made without authentication
// (--insecure-dev).
const anonymousActor = "anonymous"

// roles is a set of token roles.
type roles uint8

func roleBit(r tokens.Role) roles {
	switch r {
	case tokens.Admin:
		return 1
	case tokens.Operator:
		return 2
	case tokens.Issuer:
		return 4
	case tokens.Viewer:
		return 8
	}
	return 0
}

func set(rs ...tokens.Role) roles {
	var out roles
	for _, r := range rs {
		out |= roleBit(r)
	}
	return out | roleBit(tokens.Admin)
}

// What each role may call (docs/security.md, "Admin roles"). Key secrets
// (the clear key, in the answers of create and rotate) are for admin and
// issuer only; stored keys hold only the key's hash.
var (
	anyRole     = set(tokens.Operator, tokens.Issuer, tokens.Viewer)
	configRead  = set(tokens.Operator, tokens.Viewer)
	configWrite = set(tokens.Operator)
	keyRead     = set(tokens.Operator, tokens.Issuer, tokens.Viewer)
	keyIssue    = set(tokens.Issuer)
	keyEdit     = set(tokens.Operator)
	keyRevoke   = set(tokens.Operator, tokens.Issuer)
	auditRead   = set(tokens.Operator, tokens.Viewer)
)

func (rs roles) has(r tokens.Role) bool { return rs&roleBit(r) != 0 }

// names lists the roles in the set, for messages.
func (rs roles) names() string {
	var out []string
	for _, r := range tokens.Roles {
		if rs.has(r) {
			out = append(out, string(r))
		}
	}
	return strings.Join(out, ", ")
}

type actorKey struct{}

// actor returns the name of the token the request was authenticated with.
func actor(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok {
		return a
	}
	return anonymousActor
}

// authorize checks the request's token against the route: 401 when it is
// missing or unknown, 403 when its role may not call the route. It returns
// the request carrying the token's name for the audit trail. The token
// itself is never logged.
func (s *Server) authorize(r *http.Request, rt route) (*http.Request, *Error) {
	if s.tokens == nil {
		return r, nil
	}
	tok, ok := s.tokens.Current().Authenticate(r)
	if !ok {
		s.denied.WithLabelValues("unauthenticated").Inc()
		return r, errorf(http.StatusUnauthorized, codeUnauthorized, "missing or wrong admin token: send Authorization: Bearer <token>")
	}
	if !rt.allow.has(tok.Role) {
		s.denied.WithLabelValues("forbidden").Inc()
		s.log.Info().Str("token", tok.Name).Str("role", string(tok.Role)).Str("route", rt.method+" "+rt.path).Msg("admin request forbidden")
		return r, errorf(http.StatusForbidden, codeForbidden, "token %q has role %s; %s %s needs one of: %s",
			tok.Name, tok.Role, rt.method, rt.path, rt.allow.names())
	}
	ctx := context.WithValue(r.Context(), actorKey{}, tok.Name)
	return r.WithContext(context.WithValue(ctx, roleKey{}, tok.Role)), nil
}

type roleKey struct{}

// mayWrite reports whether the request's token may write configuration
// (admin, operator), or no authentication is configured (--insecure-dev):
// such callers may see the values they could write.
func mayWrite(ctx context.Context) bool {
	r, ok := ctx.Value(roleKey{}).(tokens.Role)
	if !ok {
		_, authed := ctx.Value(actorKey{}).(string)
		return !authed
	}
	return configWrite.has(r)
}
