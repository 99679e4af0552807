package declarative

import (
	"fmt"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/validation"
)

// KindKey is the kind of a key in a plan.
const KindKey = "key"

// Key is an API key as a declarative file holds it: identified by its id,
// with its settings, and its value only as a reference or a hash:
//
//	keys:
//	  - id: ci-bot
//	    alias: ci
//	    tags: [team-a]
//	    policies: [gold]
//	    expires_at: 2030-01-01T00:00:00Z
//	    key: ${env:CI_BOT_KEY}        # the clear value, from the environment
//	  - id: partner
//	    policies: [free]
//	    hash: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//
// A clear value written in the file itself is refused: `key` must be a
// ${env:NAME} reference. It is hashed when the file is read (Value is then
// empty and Hash set), so only the SHA-256 ever leaves the reader; export
// writes Hash. The server-managed fields (created_at) and client
// certificate records are not part of it.
type Key struct {
	ID        string              `json:"id" yaml:"id"`
	Alias     string              `json:"alias,omitempty" yaml:"alias,omitempty"`
	Tags      []string            `json:"tags,omitempty" yaml:"tags,omitempty"`
	Policies  []string            `json:"policies,omitempty" yaml:"policies,omitempty"`
	Access    []model.AccessRight `json:"access,omitempty" yaml:"access,omitempty"`
	RateLimit *model.Limit        `json:"rate_limit,omitempty" yaml:"rate_limit,omitempty"`
	Quota     *model.Quota        `json:"quota,omitempty" yaml:"quota,omitempty"`
	Org       string              `json:"org,omitempty" yaml:"org,omitempty"`
	ExpiresAt *time.Time          `json:"expires_at,omitempty" yaml:"expires_at,omitempty"`
	Disabled  bool                `json:"disabled,omitempty" yaml:"disabled,omitempty"`
	// Hash is the lowercase hex SHA-256 of the key's value.
	Hash string `json:"hash,omitempty" yaml:"hash,omitempty"`
	// Value is the clear key read from ${env:NAME}; never encoded as JSON,
	// and emptied (into Hash) by ParseWith.
	Value string `json:"-" yaml:"key,omitempty"`
}

// Clear key values a file may reference: as POST /v1/keys accepts them.
const (
	minKeyValue = 16
	maxKeyValue = 512
)

// Model returns the stored form of k, created at createdAt.
func (k *Key) Model(createdAt time.Time) model.Key {
	pols := k.Policies
	if pols == nil {
		pols = []string{}
	}
	return model.Key{ID: k.ID, Hash: k.Hash, Alias: k.Alias, Policies: pols, Access: k.Access,
		RateLimit: k.RateLimit, Quota: k.Quota, Org: k.Org, ExpiresAt: k.ExpiresAt, Disabled: k.Disabled,
		CreatedAt: createdAt, Tags: k.Tags}
}

// KeyOf returns the declarative form of a stored key.
func KeyOf(m *model.Key) Key {
	k := Key{ID: m.ID, Hash: m.Hash, Alias: m.Alias, Tags: m.Tags, Policies: m.Policies, Access: m.Access,
		RateLimit: m.RateLimit, Quota: m.Quota, Org: m.Org, ExpiresAt: m.ExpiresAt, Disabled: m.Disabled}
	if k.ExpiresAt != nil {
		t := k.ExpiresAt.UTC()
		k.ExpiresAt = &t
	}
	return k
}

// checkKeyValues refuses, before ${env:NAME} references are resolved, a
// key value written in clear in the file. The value is never echoed.
func checkKeyValues(errs *validation.Errors, doc *yaml.Node) {
	if doc.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != "keys" || doc.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for j, item := range doc.Content[i+1].Content {
			if item.Kind != yaml.MappingNode {
				continue
			}
			for f := 0; f+1 < len(item.Content); f += 2 {
				k, v := item.Content[f], item.Content[f+1]
				if k.Value == "key" && (v.Kind != yaml.ScalarNode || !envRef.MatchString(v.Value)) {
					errs.Add(validation.Index("keys", j)+".key", "line %d: a key's value is a secret: write it as ${env:NAME}, or give its SHA-256 as hash", k.Line)
				}
			}
		}
	}
}

// decodeKeys decodes the keys list and replaces each clear value by its
// hash, checking it as POST /v1/keys checks a caller-chosen key.
func decodeKeys(errs *validation.Errors, n *yaml.Node) []Key {
	keys := decodeList[Key](errs, "keys", n)
	for i := range keys {
		k := &keys[i]
		if k.Value == "" || envRef.MatchString(k.Value) {
			k.Value = "" // unresolved: reported by resolveEnv
			continue
		}
		field := validation.Index("keys", i) + ".key"
		line := fieldLine(n.Content[i], "key")
		switch {
		case k.Hash != "":
			errs.Add(field, "line %d: give key or hash, not both", line)
		case len(k.Value) < minKeyValue || len(k.Value) > maxKeyValue:
			errs.Add(field, "line %d: the referenced value must be %d to %d characters long", line, minKeyValue, maxKeyValue)
		case !printable(k.Value):
			errs.Add(field, "line %d: the referenced value must be printable ASCII without spaces", line)
		default:
			k.Hash = model.HashKey([]byte(k.Value))
		}
		k.Value = ""
	}
	return keys
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// fieldLine returns the line of field in the mapping n (n's own line when
// absent).
func fieldLine(n *yaml.Node, field string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == field {
			return n.Content[i].Line
		}
	}
	return n.Line
}

// validateKeys returns the problems of the file's keys on their own:
// invalid settings, a missing value, duplicate ids and two keys with the
// same value.
func (f *File) validateKeys() validation.Errors {
	var errs validation.Errors
	ids, hashes := map[string]int{}, map[string]int{}
	for i := range f.Keys {
		k := &f.Keys[i]
		p := validation.Index("keys", i)
		m := k.Model(time.Time{})
		for _, e := range m.Validate() {
			if e.Field == "hash" && k.Hash == "" {
				e.Message = "missing: give hash (the key's SHA-256) or key: ${env:NAME}"
			}
			errs.Add(validation.Join(p, e.Field), "%s", e.Message)
		}
		if j, ok := ids[k.ID]; ok && k.ID != "" {
			errs.Add(p+".id", "duplicate id %q (also keys[%d])", k.ID, j)
		} else {
			ids[k.ID] = i
		}
		if j, ok := hashes[k.Hash]; ok && k.Hash != "" {
			errs.Add(p+".hash", "the same key value as keys[%d]: every key needs its own value", j)
		} else {
			hashes[k.Hash] = i
		}
	}
	return errs
}

// checkKeysAgainst returns the problems of the file's keys over the
// stored state cur: policies and APIs that will not exist, and a value
// another stored key that stays already has.
func (f *File) checkKeysAgainst(cur *File, prune bool) validation.Errors {
	var errs validation.Errors
	pols, apis, inFile := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, p := range f.Policies {
		pols[p.ID] = true
	}
	for _, a := range f.APIs {
		apis[a.ID] = true
	}
	for _, k := range f.Keys {
		inFile[k.ID] = true
	}
	stays := map[string]string{} // hash -> id of a stored key left as it is
	if !prune {
		for _, p := range cur.Policies {
			pols[p.ID] = true
		}
		for _, a := range cur.APIs {
			apis[a.ID] = true
		}
		for _, k := range cur.Keys {
			if !inFile[k.ID] {
				stays[k.Hash] = k.ID
			}
		}
	}
	for i, k := range f.Keys {
		p := validation.Index("keys", i)
		for j, pol := range k.Policies {
			if model.ValidID(pol) && !pols[pol] {
				errs.Add(validation.Index(p+".policies", j), "unknown policy %q: it is neither in the file nor stored", pol)
			}
		}
		for j, ar := range k.Access {
			if !apis[ar.API] {
				errs.Add(validation.Index(p+".access", j)+".api", "unknown API %q: it is neither in the file nor stored", ar.API)
			}
		}
		if other, ok := stays[k.Hash]; ok && k.Hash != "" {
			errs.Add(p+".hash", "stored key %q already has this value", other)
		}
	}
	return errs
}

// planKeys adds the creates and updates of the file's keys to p.
func (p *Plan) planKeys(want, cur []Key) error {
	curKeys := map[string]*Key{}
	for i := range cur {
		curKeys[cur[i].ID] = &cur[i]
	}
	w := append([]Key(nil), want...)
	sort.SliceStable(w, func(i, j int) bool { return w[i].ID < w[j].ID })
	for i := range w {
		if i > 0 && w[i].ID == w[i-1].ID {
			return fmt.Errorf("key %q: %w", w[i].ID, ErrDuplicate)
		}
		if err := p.put(KindKey, w[i].ID, &w[i], lookup(curKeys, w[i].ID)); err != nil {
			return err
		}
	}
	return nil
}

// pruneKeys adds the deletes of stored keys missing from the file to p
// (counted as kept without prune).
func (p *Plan) pruneKeys(want, cur []Key, prune bool) {
	wanted := map[string]bool{}
	for _, k := range want {
		wanted[k.ID] = true
	}
	c := append([]Key(nil), cur...)
	sort.SliceStable(c, func(i, j int) bool { return c[i].ID < c[j].ID })
	for _, k := range c {
		p.remove(KindKey, k.ID, wanted[k.ID], prune)
	}
}
