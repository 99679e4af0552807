package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/spf13/pflag"
	"net/http"
	"os"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
)

// keyBody is a key as sent on create and update: the model's fields plus,
// on create, a caller-chosen clear value.
type keyBody struct {
	ID        string              `json:"id,omitempty" yaml:"id,omitempty"`
	Hash      string              `json:"hash,omitempty" yaml:"hash,omitempty"`
	CreatedAt *time.Time          `json:"created_at,omitempty" yaml:"created_at,omitempty"`
	Alias     string              `json:"alias,omitempty" yaml:"alias,omitempty"`
	Policies  []string            `json:"policies" yaml:"policies"`
	Access    []model.AccessRight `json:"access,omitempty" yaml:"access,omitempty"`
	RateLimit *model.Limit        `json:"rate_limit,omitempty" yaml:"rate_limit,omitempty"`
	Quota     *model.Quota        `json:"quota,omitempty" yaml:"quota,omitempty"`
	Org       string              `json:"org,omitempty" yaml:"org,omitempty"`
	ExpiresAt *time.Time          `json:"expires_at,omitempty" yaml:"expires_at,omitempty"`
	Disabled  bool                `json:"disabled,omitempty" yaml:"disabled,omitempty"`
	Key       string              `json:"key,omitempty" yaml:"key,omitempty"`
	// Certificate (create only) is a PEM client certificate: the key is
	// that certificate's record.
	Certificate string `json:"certificate,omitempty" yaml:"certificate,omitempty"`
	// ClientCertificate is read back from a certificate's record.
	ClientCertificate *model.KeyCertificate `json:"client_certificate,omitempty" yaml:"client_certificate,omitempty"`
}

// keyFlags are the flags that set a key's fields.
type keyFlags struct {
	alias    optString
	policies stringList
	expires  optString
	org      optString
}

func (kf *keyFlags) register(fs *pflag.FlagSet) {
	fs.Var(&kf.alias, "alias", "a name for the key, shown in lists")
	fs.Var(&kf.policies, "policy", "policy id the key holds (repeat, or comma separated)")
	fs.Var(&kf.expires, "expires", "expiry: a duration from now (720h) or an RFC 3339 time; \"never\" clears it")
	fs.Var(&kf.org, "org", "the org (tenant) the key belongs to; \"\" takes it out of its org")
}

// apply sets the flags given on b.
func (kf *keyFlags) apply(b *keyBody, now time.Time) error {
	if kf.alias.set {
		b.Alias = kf.alias.val
	}
	if kf.policies.set {
		b.Policies = kf.policies.vals
	}
	if kf.org.set {
		b.Org = kf.org.val
	}
	if kf.expires.set {
		t, err := parseExpiry(kf.expires.val, now)
		if err != nil {
			return err
		}
		b.ExpiresAt = t
	}
	return nil
}

func (kf *keyFlags) any() bool {
	return kf.alias.set || kf.policies.set || kf.expires.set || kf.org.set
}

func parseExpiry(s string, now time.Time) (*time.Time, error) {
	if s == "never" || s == "" {
		return nil, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return nil, usageErrorf("--expires %s: the duration must be positive", s)
		}
		t := now.Add(d).UTC().Truncate(time.Second)
		return &t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, usageErrorf("--expires %q: use a duration (720h) or an RFC 3339 time (2030-01-02T15:04:05Z)", s)
	}
	return &t, nil
}

// optString is a string flag that knows whether it was given.
type optString struct {
	val string
	set bool
}

func (o *optString) String() string { return o.val }

// Type names the value in the help.
func (o *optString) Type() string { return "string" }

func (o *optString) Set(v string) error { o.val, o.set = v, true; return nil }

func keysResource() *resource {
	for _, r := range resources() {
		if r.kind == "key" {
			return r
		}
	}
	return nil
}

func cmdKeysCreate(ctx context.Context, r *run, args []string) error {
	fs := r.flagSet("keys create", "[-f FILE] [--cert FILE]", "Create an API key. Its clear value is printed once: store it. Only its SHA-256 hash is kept. With --cert, the key is a client certificate's record instead (for APIs in auth mode mtls, or with auth.mtls): no secret is made.")
	file := fs.String("f", "", "file with the key (JSON or YAML; - for stdin); flags override its fields")
	id := fs.String("id", "", "key id (default: generated)")
	clear := fs.String("key", "", "use this clear value instead of a generated one (for migration)")
	certFile := fs.String("cert", "", "PEM client certificate `file`: the key is that certificate's record")
	var kf keyFlags
	kf.register(fs)
	if _, err := r.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *clear != "" && *certFile != "" {
		return usageErrorf("keys create: --key and --cert exclude each other")
	}
	var b keyBody
	if *file != "" || (!kf.any() && *certFile == "") {
		data, err := r.readInput(*file)
		if err != nil {
			return err
		}
		if err := decodeDoc(data, &b); err != nil {
			return err
		}
	}
	if *id != "" {
		b.ID = *id
	}
	if *clear != "" {
		b.Key = *clear
	}
	if *certFile != "" {
		pemText, err := os.ReadFile(*certFile)
		if err != nil {
			return usageErrorf("keys create: --cert: %v", err)
		}
		b.Certificate = string(pemText)
	}
	if err := kf.apply(&b, r.env.Now()); err != nil {
		return err
	}
	c, err := r.admin()
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/keys", nil, &b)
	if err != nil {
		return err
	}
	return r.printNewKey(resp.Body)
}

// printNewKey prints a key answered with its clear value.
func (r *run) printNewKey(body []byte) error {
	if r.g.output == "json" {
		return printJSON(r.env.Stdout, body)
	}
	var k struct {
		Clear string `json:"key"`
	}
	if err := json.Unmarshal(body, &k); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	if r.g.output == "yaml" {
		var full map[string]any
		_ = json.Unmarshal(body, &full)
		return printYAML(r.env.Stdout, full)
	}
	if err := r.printObjects(keysResource(), []json.RawMessage{body}, true); err != nil {
		return err
	}
	if k.Clear == "" {
		return nil // a certificate's record: the client holds its private key
	}
	fmt.Fprintf(r.env.Stdout, "\nkey: %s\n", k.Clear)
	fmt.Fprintln(r.env.Stderr, "The key is shown only once: store it now.")
	return nil
}

func cmdKeysUpdate(ctx context.Context, r *run, args []string) error {
	fs := r.flagSet("keys update", "ID [-f FILE]", "Change a key: its policies, alias, expiry, or disable it. With flags, the key is read, changed and written back guarded by its ETag; with -f, the document replaces the key's settings.")
	file := fs.String("f", "", "file with the key's settings (JSON or YAML; - for stdin)")
	ifMatch := fs.String("if-match", "", "only update if the stored key still has this ETag")
	disable := fs.Bool("disable", false, "disable the key (it is refused until enabled)")
	enable := fs.Bool("enable", false, "enable a disabled key")
	var kf keyFlags
	kf.register(fs)
	pos, err := r.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *disable && *enable {
		return usageErrorf("keys update: --disable and --enable exclude each other")
	}
	if *file == "" && !kf.any() && !*disable && !*enable {
		return usageErrorf("keys update: nothing to change: give -f FILE or flags (--policy, --alias, --expires, --disable, --enable)")
	}
	c, err := r.admin()
	if err != nil {
		return err
	}
	path := objectPath("/v1/keys", pos[0])
	var b keyBody
	etag := *ifMatch
	if *file != "" {
		data, err := r.readInput(*file)
		if err != nil {
			return err
		}
		if err := decodeDoc(data, &b); err != nil {
			return err
		}
	} else {
		hdr, err := c.getJSON(ctx, path, &b)
		if err != nil {
			return err
		}
		if etag == "" {
			etag = hdr.Get("ETag")
		}
	}
	if err := kf.apply(&b, r.env.Now()); err != nil {
		return err
	}
	if *disable || *enable {
		b.Disabled = *disable
	}
	if b.ID != "" && b.ID != pos[0] {
		return usageErrorf("keys update: the document's id %q differs from the argument %q", b.ID, pos[0])
	}
	b.Key = ""
	resp, err := c.do(ctx, http.MethodPut, path, map[string]string{"If-Match": etag}, &b)
	if err != nil {
		return err
	}
	return r.printObjects(keysResource(), []json.RawMessage{resp.Body}, true)
}

func cmdKeysRotate(ctx context.Context, r *run, args []string) error {
	fs := r.flagSet("keys rotate", "ID", "Give a key a new value, keeping its id and settings. The old value stops working at once; the new one is printed once.")
	clear := fs.String("key", "", "use this clear value instead of a generated one")
	pos, err := r.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	c, err := r.admin()
	if err != nil {
		return err
	}
	var body any
	if *clear != "" {
		body = map[string]string{"key": *clear}
	}
	resp, err := c.do(ctx, http.MethodPost, objectPath("/v1/keys", pos[0])+"/rotate", nil, body)
	if err != nil {
		return err
	}
	return r.printNewKey(resp.Body)
}
