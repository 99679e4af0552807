package api

import (
	"net/http"
	"strings"

	"github.com/sluicegw/sluice/pkg/tokens"
	"github.com/sluicegw/sluice/syncer/internal/declarative"
)

// planRead may call POST /v1/plan: whoever may read the configuration.
var planRead = set(tokens.Operator, tokens.Viewer)

// planConfig is POST /v1/plan: the body of POST /v1/apply, planned against
// the stored state and never written (a dry run, whatever dry_run says).
// It only reads, so viewers may call it: `sluicectl diff` works with a
// read-only token. A plan answered to a token that may not write
// configuration does not compare secrets (auth.jwt.keys.secret, any field
// named like a secret, password or private key): their changes are left
// out, and an update that changes nothing else is not shown. Were they
// shown, even masked, the plan would tell a viewer whether a guessed
// secret is the stored one.
func (s *Server) planConfig(w http.ResponseWriter, r *http.Request) error {
	return s.applyOrPlan(w, r, true)
}

// withoutSecrets removes the secret fields' changes from p's updates, and
// the updates left with no change.
func withoutSecrets(p *declarative.Plan) {
	kept := p.Actions[:0]
	for _, a := range p.Actions {
		if a.Op == declarative.OpUpdate {
			changes := a.Changes[:0]
			for _, c := range a.Changes {
				if !secretField(c.Field) {
					changes = append(changes, c)
				}
			}
			if len(changes) == 0 {
				continue
			}
			a.Changes = changes
		}
		kept = append(kept, a)
	}
	clear(p.Actions[len(kept):])
	p.Actions = kept
	if len(kept) == 0 {
		p.Actions = nil // as a plan with nothing to do, to the byte
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
