package jwtauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// keySet is the cached JWKS of one JWKS URL or OIDC issuer, shared by
// every API that names it.
//
// Fetches: one at a time (callers that need keys join the fetch in
// flight), and never more often than Options.MinRefreshInterval, whatever
// triggers them: the first use, a kid not in the set (or naming a key of
// another type), a signature that a key of the set fails (the key may have
// been rotated under the same kid), or the set getting older than
// Options.RefreshInterval (that refresh runs in the background; requests
// keep using the cached keys meanwhile). A failed fetch keeps the
// cached keys. For an issuer, the discovery document is fetched once and
// again only after a JWKS fetch fails (jwks_uri may have moved).
type keySet struct {
	p       *Provider
	jwksURL string // fixed JWKS URL, or "" for an issuer
	issuer  string // OIDC issuer, or ""

	keys      atomic.Pointer[keyMap]
	lastFetch atomic.Int64 // unix nanos of the last fetch start (clock of Provider)

	mu       sync.Mutex
	inflight chan struct{} // closed when the fetch in flight ends; nil when none
	jwksURI  string        // discovered from the issuer
}

func (s *keySet) source() string {
	if s.issuer != "" {
		return s.issuer
	}
	return s.jwksURL
}

var errNoKeySet = errors.New("no key set fetched yet")

// lookup returns the keys that may verify a token with kid and alg, and
// the key map they come from. When the cached set has none (an unknown kid,
// or a kid naming a key of another type), the set is fetched again if the
// rate limit allows, and the caller waits for it.
func (s *keySet) lookup(ctx context.Context, kid, alg string) ([]any, *keyMap, *Error) {
	now := s.p.now()
	m := s.keys.Load()
	miss := errNoKeySet
	if m != nil {
		if now.Sub(m.fetched) >= s.p.opts.RefreshInterval {
			s.fetch(now, false) // background refresh; the cached keys answer now
		}
		keys, err := m.find(kid, alg)
		if err == nil {
			return keys, m, nil
		}
		miss = err.cause
	}
	m, err := s.newer(ctx, m)
	if err != nil {
		return nil, nil, ErrUnknownKey.with(fmt.Errorf("%v; %w", miss, err))
	}
	keys, e := m.find(kid, alg)
	if e != nil {
		return nil, nil, e
	}
	return keys, m, nil
}

// newer returns a key map fetched after old (nil: none yet): the current
// one when a fetch has replaced old already, else the outcome of a fetch
// started or joined now. It fails when the rate limit allows no fetch and
// none is in flight, when the fetch fails, or when ctx ends first.
func (s *keySet) newer(ctx context.Context, old *keyMap) (*keyMap, error) {
	if m := s.keys.Load(); m != nil && m != old {
		return m, nil
	}
	done := s.fetch(s.p.now(), true)
	if done == nil {
		return nil, errors.New("key set refetch rate-limited")
	}
	select {
	case <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the key set: %w", ctx.Err())
	}
	m := s.keys.Load()
	if m == nil || m == old {
		return nil, errors.New("key set fetch failed")
	}
	return m, nil
}

// fetch starts a fetch unless one is in flight (whose channel it returns)
// or the last one started less than MinRefreshInterval ago (nil). Without
// wait, a rate-limited call returns nil at once, taking no lock.
func (s *keySet) fetch(now time.Time, wait bool) <-chan struct{} {
	last := s.lastFetch.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < s.p.opts.MinRefreshInterval {
		if !wait {
			return nil
		}
		s.mu.Lock()
		ch := s.inflight
		s.mu.Unlock()
		if ch == nil {
			return nil
		}
		return ch
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight != nil {
		return s.inflight
	}
	last = s.lastFetch.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < s.p.opts.MinRefreshInterval {
		return nil
	}
	if !s.p.goFetch(s) {
		return nil // shutting down
	}
	s.lastFetch.Store(now.UnixNano())
	ch := make(chan struct{})
	s.inflight = ch
	return ch
}

// run performs one fetch; Provider.goFetch calls it on its own goroutine.
func (s *keySet) run(ctx context.Context) {
	err := s.refresh(ctx)
	s.p.fetched(s, err)
	s.mu.Lock()
	close(s.inflight)
	s.inflight = nil
	s.mu.Unlock()
}

func (s *keySet) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.p.opts.FetchTimeout)
	defer cancel()
	uri := s.jwksURL
	if s.issuer != "" {
		s.mu.Lock()
		uri = s.jwksURI
		s.mu.Unlock()
		if uri == "" {
			var err error
			if uri, err = s.discover(ctx); err != nil {
				return err
			}
		}
	}
	body, err := s.p.get(ctx, uri)
	if err == nil {
		var m *keyMap
		if m, _, err = parseJWKS(body, s.p.now()); err == nil {
			s.keys.Store(m)
			return nil
		}
	}
	if s.issuer != "" {
		s.mu.Lock()
		s.jwksURI = "" // discover again next time
		s.mu.Unlock()
	}
	return err
}

// discover reads the issuer's OpenID configuration and returns its
// jwks_uri. The document must name the same issuer (OpenID Connect
// Discovery 1.0, section 4.3; a trailing slash is tolerated).
func (s *keySet) discover(ctx context.Context) (string, error) {
	base := strings.TrimSuffix(s.issuer, "/")
	body, err := s.p.get(ctx, base+"/.well-known/openid-configuration")
	if err != nil {
		return "", err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("decode openid configuration: %w", err)
	}
	if strings.TrimSuffix(doc.Issuer, "/") != base {
		return "", fmt.Errorf("openid configuration names issuer %q, want %q", doc.Issuer, s.issuer)
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("openid configuration has no usable jwks_uri (%q)", doc.JWKSURI)
	}
	s.mu.Lock()
	s.jwksURI = doc.JWKSURI
	s.mu.Unlock()
	return doc.JWKSURI, nil
}

// get fetches url with the provider's client: status 200 and at most
// MaxResponseBytes.
func (p *Provider) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("get %s: status %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, p.opts.MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	if int64(len(body)) > p.opts.MaxResponseBytes {
		return nil, fmt.Errorf("get %s: response larger than %d bytes", url, p.opts.MaxResponseBytes)
	}
	return body, nil
}
