package api

import (
	"net/http"
	"strings"

	"github.com/sluicegw/sluice/pkg/tokens"
	"github.com/sluicegw/sluice/syncer/internal/declarative"
)

// planRead may call POST /v1/plan: whoever may read the configuration.
var planRead = set(tokens.Operator, tokens.Viewer)

// maskedValue replaces a secret's old and new values in a plan answered
// to a caller that may not write configuration.
const maskedValue = `"(secret, masked)"`

// planConfig is POST /v1/plan: the body of POST /v1/apply, planned against
// the stored state and never written (a dry run, whatever dry_run says).
// It only reads, so viewers may call it: `sluicectl diff` works with a
// read-only token. A plan answered to a token that may not write
// configuration shows a changed secret (auth.jwt.keys.secret, any field
// named like a secret, password or private key) as changed with both
// values masked.
func (s *Server) planConfig(w http.ResponseWriter, r *http.Request) error {
	return s.applyOrPlan(w, r, true)
}

// maskSecrets masks the values of the secret fields a plan changes.
func maskSecrets(p *declarative.Plan) {
	for i := range p.Actions {
		for j := range p.Actions[i].Changes {
			c := &p.Actions[i].Changes[j]
			if !secretField(c.Field) {
				continue
			}
			if c.Old != "" {
				c.Old = maskedValue
			}
			if c.New != "" {
				c.New = maskedValue
			}
		}
	}
}

// secretField reports whether the last element of a field path names a
// secret (as sluicectl masks them).
func secretField(path string) bool {
	if i := strings.LastIndexAny(path, ".]"); i >= 0 {
		path = path[i+1:]
	}
	path = strings.ToLower(path)
	for _, s := range []string{"secret", "password", "private_key"} {
		if strings.Contains(path, s) {
			return true
		}
	}
	return false
}
