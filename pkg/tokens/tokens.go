// Package tokens is the set of named bearer tokens that guard the admin API
// and the analytics API: each token has a name (recorded in the audit trail)
// and a role. The set comes from a YAML file re-read when it changes
// (Source), plus tokens given in the configuration.
//
// Tokens are kept as SHA-256 digests only. A presented token is hashed and
// compared with every digest of the set with subtle.ConstantTimeCompare,
// without stopping at a match: the time taken depends neither on the
// token's content and length nor on which entry matches.
package tokens

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/sluicegw/sluice/pkg/validation"
)

// Role is what a token may do.
type Role string

// Roles, from most to least powerful. What each may do is decided by the
// service that checks it (the admin API's route table).
const (
	Admin    Role = "admin"    // everything
	Operator Role = "operator" // APIs and policies; keys without their secrets
	Issuer   Role = "issuer"   // create, rotate, revoke, list and read keys
	Viewer   Role = "viewer"   // read only
)

// Roles lists every role.
var Roles = []Role{Admin, Operator, Issuer, Viewer}

func (r Role) valid() bool {
	for _, x := range Roles {
		if r == x {
			return true
		}
	}
	return false
}

// MinChars is the fewest non-whitespace characters a token has.
const MinChars = 16

// Token is one named token: who presents it and what it may do. It holds
// the token's digest, never its clear value.
type Token struct {
	Name string
	Role Role
	sum  [sha256.Size]byte
}

// New returns the token of the clear value tok.
func New(name string, role Role, tok string) Token {
	return Token{Name: name, Role: role, sum: sha256.Sum256([]byte(tok))}
}

// Set is an immutable set of tokens.
type Set struct {
	tokens []Token
}

// NewSet returns the set of the given tokens.
func NewSet(tokens ...Token) *Set {
	return &Set{tokens: append([]Token(nil), tokens...)}
}

// Len is the number of tokens.
func (s *Set) Len() int { return len(s.tokens) }

// Names lists the tokens' names, in file order.
func (s *Set) Names() []string {
	out := make([]string, len(s.tokens))
	for i, t := range s.tokens {
		out[i] = t.Name
	}
	return out
}

// Lookup returns the token whose clear value is presented. Every entry is
// compared, in constant time per entry (see the package comment).
func (s *Set) Lookup(presented string) (Token, bool) {
	sum := sha256.Sum256([]byte(presented))
	found := -1
	for i := range s.tokens {
		eq := subtle.ConstantTimeCompare(sum[:], s.tokens[i].sum[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 || presented == "" {
		return Token{}, false
	}
	return s.tokens[found], true
}

// Authenticate returns the token r presents in its one Authorization header
// (Bearer scheme, see Bearer). Two Authorization headers are refused.
func (s *Set) Authenticate(r *http.Request) (Token, bool) {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return Token{}, false
	}
	tok, ok := Bearer(values[0])
	t, found := s.Lookup(tok)
	return t, found && ok
}

// Bearer returns the credentials of an Authorization header value of the
// Bearer scheme: the scheme in any case (RFC 9110 section 11.1), one or more
// spaces or tabs, then the token; whitespace after it is ignored.
func Bearer(h string) (string, bool) {
	const scheme = "bearer"
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	rest := h[len(scheme):]
	tok := strings.TrimLeft(rest, " \t")
	if len(tok) == len(rest) {
		return "", false
	}
	tok = strings.TrimRight(tok, " \t")
	return tok, tok != ""
}

// file is the YAML token file:
//
//	tokens:
//	  - {name: ci, role: operator, token_sha256: "<64 hex digits>"}
//	  - {name: alice, role: admin, token: "<clear token>"}
type file struct {
	Tokens []entry `yaml:"tokens"`
}

type entry struct {
	Name        string `yaml:"name"`
	Role        Role   `yaml:"role"`
	Token       string `yaml:"token"`
	TokenSHA256 string `yaml:"token_sha256"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// Parse reads a token file. It returns every problem at once, each with
// its field path (tokens[2].role); no message ever quotes a token.
func Parse(data []byte) (*Set, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not a token file (want tokens: [{name, role, token | token_sha256}]): %w", err)
	}
	var errs validation.Errors
	if len(f.Tokens) == 0 {
		errs.Add("tokens", "must list at least one token")
	}
	names := map[string]int{}
	sums := map[[sha256.Size]byte]int{}
	set := &Set{}
	for i, e := range f.Tokens {
		p := validation.Index("tokens", i)
		if !nameRE.MatchString(e.Name) {
			errs.Add(p+".name", "must be 1 to 64 letters, digits or . _ @ - (starting with a letter or digit)")
		} else if j, dup := names[e.Name]; dup {
			errs.Add(p+".name", "%q is also the name of tokens[%d]", e.Name, j)
		}
		names[e.Name] = i
		if !e.Role.valid() {
			errs.Add(p+".role", "%q is not one of admin, operator, issuer, viewer", string(e.Role))
		}
		t := Token{Name: e.Name, Role: e.Role}
		switch {
		case e.Token != "" && e.TokenSHA256 != "":
			errs.Add(p, "has both token and token_sha256: give one")
		case e.Token != "":
			CheckClear(&errs, p+".token", e.Token)
			t.sum = sha256.Sum256([]byte(e.Token))
		case e.TokenSHA256 != "":
			b, err := hex.DecodeString(e.TokenSHA256)
			if err != nil || len(b) != sha256.Size {
				errs.Add(p+".token_sha256", "must be 64 hex digits (the SHA-256 of the token: printf %%s TOKEN | sha256sum)")
			}
			copy(t.sum[:], b)
		default:
			errs.Add(p, "has neither token nor token_sha256")
		}
		if j, dup := sums[t.sum]; dup && t.sum != ([sha256.Size]byte{}) {
			errs.Add(p, "has the same token as tokens[%d]", j)
		}
		sums[t.sum] = i
		set.tokens = append(set.tokens, t)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return set, nil
}

// CheckClear adds a problem at field for a clear token that is short once
// whitespace is left out, has whitespace around it (a copy-paste accident
// the Authorization header would not carry) or holds control characters.
func CheckClear(errs *validation.Errors, field, tok string) {
	n := 0
	for _, r := range tok {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	if n < MinChars {
		errs.Add(field, "must have at least %d non-whitespace characters, has %d", MinChars, n)
	}
	if strings.TrimSpace(tok) != tok {
		errs.Add(field, "must not start or end with whitespace")
	}
	if strings.IndexFunc(tok, unicode.IsControl) >= 0 {
		errs.Add(field, "must not contain control characters (tab, newline, NUL, ...)")
	}
}
