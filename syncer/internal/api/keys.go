package api

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/validation"
)

// Clear keys: generated ones are "sk_" + 32 random bytes in base64url
// without padding; caller-chosen ones (for migration) must be 16 to 512
// printable ASCII characters without spaces.
const (
	keyPrefix    = "sk_"
	minKeyLength = 16
	maxKeyLength = 512
	// writeRetries bounds read-modify-write retries of key updates when the
	// caller sent no If-Match and the key changed in between.
	writeRetries = 3
)

// keyCreate is the body of POST /v1/keys.
type keyCreate struct {
	ID        string              `json:"id,omitempty"`
	Alias     string              `json:"alias,omitempty"`
	Policies  []string            `json:"policies"`
	Access    []model.AccessRight `json:"access,omitempty"`
	RateLimit *model.Limit        `json:"rate_limit,omitempty"`
	Quota     *model.Quota        `json:"quota,omitempty"`
	Org       string              `json:"org,omitempty"`
	ExpiresAt *time.Time          `json:"expires_at,omitempty"`
	Disabled  bool                `json:"disabled,omitempty"`
	Tags      []string            `json:"tags,omitempty"`
	// Key is a caller-chosen clear value; empty means generate one.
	Key string `json:"key,omitempty"`
	// Certificate, a PEM client certificate, makes the key that
	// certificate's record instead of an API key: it is stored under
	// model.HashCert of the certificate and no secret is returned.
	Certificate string `json:"certificate,omitempty"`
}

// keyUpdate is the body of PUT /v1/keys/{id}: the mutable fields, plus the
// read-only ones a GET returns, so GET-edit-PUT works.
type keyUpdate struct {
	ID        string              `json:"id,omitempty"`
	Hash      string              `json:"hash,omitempty"`
	CreatedAt *time.Time          `json:"created_at,omitempty"`
	Alias     string              `json:"alias,omitempty"`
	Policies  []string            `json:"policies"`
	Access    []model.AccessRight `json:"access,omitempty"`
	RateLimit *model.Limit        `json:"rate_limit,omitempty"`
	Quota     *model.Quota        `json:"quota,omitempty"`
	Org       string              `json:"org,omitempty"`
	ExpiresAt *time.Time          `json:"expires_at,omitempty"`
	Disabled  bool                `json:"disabled,omitempty"`
	Tags      []string            `json:"tags,omitempty"`
	// ClientCertificate is read-only, accepted so GET-edit-PUT works.
	ClientCertificate *model.KeyCertificate `json:"client_certificate,omitempty"`
}

// keyRotate is the body of POST /v1/keys/{id}/rotate (optional).
type keyRotate struct {
	Key string `json:"key,omitempty"`
}

// Keys are listed, read and deleted like every kind (kind.go); their
// create, PUT and rotate are their own: a key's value is generated or
// given and stored only as its hash, and PUT edits the stored key (its
// hash and creation time stay) rather than replacing it.
var keyKind = kind[model.Key]{
	name: store.KindKey, path: "/v1/keys",
	id:       func(k *model.Key) *string { return &k.ID },
	validate: (*model.Key).Validate,
}

// withClear is a key as stored plus its clear value: the only response
// that ever carries it.
type withClear struct {
	Clear string `json:"key"`
	model.Key
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) error {
	raw, err := readBody(r)
	if err != nil {
		return err
	}
	var in keyCreate
	if errs := decodeStrict(raw, &in); len(errs) > 0 {
		return errs
	}
	var errs validation.Errors
	if in.ID == "" {
		in.ID = "key-" + randomHex(8)
	}
	k := model.Key{ID: in.ID, Alias: in.Alias, Policies: in.Policies,
		Access: in.Access, RateLimit: in.RateLimit, Quota: in.Quota, Org: in.Org, ExpiresAt: in.ExpiresAt,
		Disabled: in.Disabled, Tags: in.Tags, CreatedAt: s.now().UTC().Truncate(time.Second)}
	var clear string
	if in.Certificate != "" {
		certificateKey(&errs, &k, in)
	} else {
		if clear, err = clearKey(&errs, in.Key); err != nil {
			return err
		}
		k.Hash = model.HashKey([]byte(clear))
	}
	body, err := s.validateKey(r, &errs, &k)
	if err != nil {
		return err
	}
	if err := s.apply(w, r, store.Change{Kind: store.KindKey, Op: store.OpPut, ID: k.ID, Hash: k.Hash, Body: body, Create: true, Refs: store.KeyRefs(&k)}); err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/keys/"+k.ID)
	w.Header().Set("ETag", store.ETag(body))
	if k.Certificate != nil {
		writeJSON(w, http.StatusCreated, k) // no secret: the client holds its private key
		return nil
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, withClear{Clear: clear, Key: k})
	return nil
}

// certificateKey makes k the record of the PEM client certificate of in.
func certificateKey(errs *validation.Errors, k *model.Key, in keyCreate) {
	if in.Key != "" {
		errs.Add("key", "a key is an API key or a certificate's record: set key or certificate, not both")
	}
	hash, kc, err := model.ParseClientCertificate([]byte(in.Certificate))
	if err != nil {
		errs.Add("certificate", "%v", err)
		k.Hash = model.HashCert(nil) // the problem is reported once, as the certificate's
		return
	}
	k.Hash, k.Certificate = hash, kc
}

func (s *Server) putKey(w http.ResponseWriter, r *http.Request) error {
	raw, err := readBody(r)
	if err != nil {
		return err
	}
	var in keyUpdate
	if errs := decodeStrict(raw, &in); len(errs) > 0 {
		return errs
	}
	id := r.PathValue("id")
	return s.modifyKey(w, r, func(cur *model.Key, errs *validation.Errors) {
		if in.ID != "" && in.ID != id {
			errs.Add("id", "must match the id in the path (%q)", id)
		}
		if in.Hash != "" && in.Hash != cur.Hash {
			errs.Add("hash", "cannot be changed: rotate the key with POST /v1/keys/%s/rotate", id)
		}
		if in.ClientCertificate != nil && (cur.Certificate == nil || in.ClientCertificate.Fingerprint != cur.Certificate.Fingerprint) {
			errs.Add("client_certificate", "cannot be changed: create a key for the new certificate")
		}
		cur.Alias, cur.Policies, cur.Access = in.Alias, in.Policies, in.Access
		cur.RateLimit, cur.Quota, cur.ExpiresAt, cur.Disabled = in.RateLimit, in.Quota, in.ExpiresAt, in.Disabled
		cur.Org = in.Org
		cur.Tags = in.Tags
	}, func(k *model.Key, _ string) any { return k })
}

func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request) error {
	raw, err := readBody(r)
	if err != nil {
		return err
	}
	var in keyRotate
	if len(raw) > 0 {
		if errs := decodeStrict(raw, &in); len(errs) > 0 {
			return errs
		}
	}
	var clear string
	return s.modifyKey(w, r, func(cur *model.Key, errs *validation.Errors) {
		if cur.Certificate != nil {
			errs.Add("id", "key %s is a client certificate's record and has no value to rotate: create a key for the new certificate, then delete this one", cur.ID)
			return
		}
		c, err := clearKey(errs, in.Key)
		if err != nil {
			errs.Add("key", "%v", err)
			return
		}
		clear = c
		cur.Hash = model.HashKey([]byte(clear))
	}, func(k *model.Key, _ string) any {
		w.Header().Set("Cache-Control", "no-store")
		return withClear{Clear: clear, Key: *k}
	})
}

// modifyKey is the read-modify-write of PUT and rotate: read the key, let
// edit change it (recording problems), validate, and write it only if it is
// unchanged since the read (the caller's If-Match, or the ETag read here,
// retried a few times when the caller sent none).
func (s *Server) modifyKey(w http.ResponseWriter, r *http.Request, edit func(*model.Key, *validation.Errors), resp func(*model.Key, string) any) error {
	id := r.PathValue("id")
	ifMatch := r.Header.Get("If-Match")
	for attempt := 0; ; attempt++ {
		cur, etag, err := s.opts.Store.GetRaw(r.Context(), store.KindKey, id)
		if err != nil {
			return err
		}
		var k model.Key
		if err := json.Unmarshal(cur, &k); err != nil {
			return fmt.Errorf("stored key %s: %w", id, err)
		}
		oldHash := k.Hash
		var errs validation.Errors
		edit(&k, &errs)
		body, err := s.validateKey(r, &errs, &k)
		if err != nil {
			return err
		}
		c := store.Change{Kind: store.KindKey, Op: store.OpPut, ID: id, Hash: k.Hash, Body: body, IfMatch: ifMatch, Refs: store.KeyRefs(&k)}
		if c.IfMatch == "" {
			c.IfMatch = etag
		}
		if k.Hash != oldHash {
			c.OldHash = oldHash
		}
		err = s.apply(w, r, c)
		if ifMatch == "" && errors.Is(err, store.ErrPrecondition) && attempt < writeRetries {
			continue
		}
		if err != nil {
			return err
		}
		w.Header().Set("ETag", store.ETag(body))
		writeJSON(w, http.StatusOK, resp(&k, etag))
		return nil
	}
}

// validateKey validates k on its own and against the stored policies and
// APIs, adding to errs, and returns its JSON when there is no problem. The
// references are checked again inside the write (store.KeyRefs), where a
// concurrent delete cannot slip between check and write.
func (s *Server) validateKey(r *http.Request, errs *validation.Errors, k *model.Key) ([]byte, error) {
	*errs = append(*errs, k.Validate()...)
	have, err := s.opts.Store.Exist(r.Context(), store.KindPolicy, k.Policies)
	if err != nil {
		return nil, err
	}
	for i, p := range k.Policies {
		if model.ValidID(p) && !have[p] {
			errs.Add(validation.Index("policies", i), "unknown policy %q", p)
		}
	}
	if err := s.checkAccessAPIs(r, errs, k.Access); err != nil {
		return nil, err
	}
	if err := s.checkKeyOrg(r, errs, k); err != nil {
		return nil, err
	}
	if len(*errs) > 0 {
		return nil, *errs
	}
	if k.Policies == nil {
		k.Policies = []string{}
	}
	body, err := json.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return body, nil
}

// checkKeyOrg adds a problem when the key names an org that does not
// exist (checked again inside the write, store.KeyRefs).
func (s *Server) checkKeyOrg(r *http.Request, errs *validation.Errors, k *model.Key) error {
	if k.Org == "" || !model.ValidID(k.Org) {
		return nil
	}
	have, err := s.opts.Store.Exist(r.Context(), store.KindOrg, []string{k.Org})
	if err != nil {
		return err
	}
	if !have[k.Org] {
		errs.Add("org", "unknown org %q", k.Org)
	}
	return nil
}

// clearKey returns the caller's key after checking it, or a new one.
func clearKey(errs *validation.Errors, given string) (string, error) {
	if given == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("generate key: %w", err)
		}
		return keyPrefix + base64.RawURLEncoding.EncodeToString(b), nil
	}
	if len(given) < minKeyLength || len(given) > maxKeyLength {
		errs.Add("key", "must be %d to %d characters long", minKeyLength, maxKeyLength)
	}
	for _, c := range []byte(given) {
		if c <= ' ' || c > '~' {
			errs.Add("key", "must be printable ASCII without spaces")
			break
		}
	}
	return given, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
