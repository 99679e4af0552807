package cli

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/sluicegw/sluice/syncer/internal/declarative"
)

// masked replaces a secret value in output unless --show-secrets.
const masked = "(secret, masked; --show-secrets prints it)"

// secretField reports whether the last element of a field path names a
// secret: JWT HMAC secrets (auth.jwt.keys.secret) and any field whose name
// says it is a secret, password or private key.
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

var envRefRE = regexp.MustCompile(`^\$\{env:[A-Za-z_][A-Za-z0-9_]*\}$`)

// maskTree replaces, in a decoded JSON value, every non-empty string of a
// secret field with repl(path, value).
func maskTree(v any, path string, repl func(path, value string) string) any {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if s, ok := c.(string); ok && s != "" && secretField(p) && !envRefRE.MatchString(s) {
				t[k] = repl(p, s)
				continue
			}
			t[k] = maskTree(c, p, repl)
		}
	case []any:
		for i, c := range t {
			t[i] = maskTree(c, fmt.Sprintf("%s[%d]", path, i), repl)
		}
	}
	return v
}

// maskJSON returns raw with its secrets masked (raw itself when it has
// none or is not JSON).
func maskJSON(raw []byte) []byte {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	found := false
	maskTree(v, "", func(string, string) string { found = true; return masked })
	if !found {
		return raw
	}
	b, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return b
}

// maskPlan masks the old and new values of secret fields in a plan.
func maskPlan(p *declarative.Plan) {
	for i := range p.Actions {
		for j := range p.Actions[i].Changes {
			c := &p.Actions[i].Changes[j]
			if !secretField(c.Field) {
				continue
			}
			if c.Old != "" {
				c.Old = `"` + masked + `"`
			}
			if c.New != "" {
				c.New = `"` + masked + `"`
			}
		}
	}
}

// secretEnvName is the environment variable export names for a secret.
func secretEnvName(kind, id, path string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z':
				return r - 'a' + 'A'
			case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
				return r
			}
			return '_'
		}, s)
	}
	return "SLUICE_" + clean(kind) + "_" + clean(id) + "_" + clean(path)
}

// referenceSecrets replaces every secret of f with a reference to an
// environment variable, and returns the variables named.
func referenceSecrets(f *declarative.File) ([]string, error) {
	var names []string
	swap := func(kind, id string, obj any) error {
		b, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		changed := false
		maskTree(v, "", func(path, _ string) string {
			changed = true
			n := secretEnvName(kind, id, path)
			names = append(names, n)
			return declarative.EnvRef(n)
		})
		if !changed {
			return nil
		}
		if b, err = json.Marshal(v); err != nil {
			return err
		}
		return json.Unmarshal(b, obj)
	}
	for i := range f.APIs {
		if err := swap("api", f.APIs[i].ID, &f.APIs[i]); err != nil {
			return nil, fmt.Errorf("export: api %s: %w", f.APIs[i].ID, err)
		}
	}
	for i := range f.Policies {
		if err := swap("policy", f.Policies[i].ID, &f.Policies[i]); err != nil {
			return nil, fmt.Errorf("export: policy %s: %w", f.Policies[i].ID, err)
		}
	}
	return names, nil
}
