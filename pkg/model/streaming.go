package model

import (
	"bytes"
	"mime"
	"strings"
	"time"

	"github.com/sluicegw/sluice/pkg/validation"
)

// Streaming selects the responses of an API the gateway forwards as they
// arrive, each chunk flushed to the client as soon as the upstream sends
// it, instead of reading them whole first. A response streams when any
// condition holds:
//
//   - its media type (Content-Type without parameters) is one of
//     ContentTypes, e.g. "text/event-stream";
//   - Chunked is set and it has no Content-Length (chunked, or delimited by
//     the upstream closing the connection);
//   - MinBytes is positive and its Content-Length is at least MinBytes.
//
// Other responses of the API are read whole, as without Streaming.
type Streaming struct {
	ContentTypes []string `json:"content_types,omitempty" yaml:"content_types,omitempty"`
	Chunked      bool     `json:"chunked,omitempty" yaml:"chunked,omitempty"`
	MinBytes     int64    `json:"min_bytes,omitempty" yaml:"min_bytes,omitempty"`
	// IdleTimeout bounds each wait for the next bytes of a streamed body
	// (default DefaultStreamIdleTimeout). It replaces upstream.read_timeout
	// once the response headers have arrived: a stream may last as long as
	// the upstream keeps sending.
	IdleTimeout Duration `json:"idle_timeout,omitempty" yaml:"idle_timeout,omitempty"`
}

// DefaultStreamIdleTimeout is Streaming.IdleTimeout when unset.
const DefaultStreamIdleTimeout = 30 * time.Second

// EffectiveIdleTimeout is IdleTimeout, or DefaultStreamIdleTimeout when unset.
func (s *Streaming) EffectiveIdleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout.D()
	}
	return DefaultStreamIdleTimeout
}

// UpgradeWebSocket is the only upgrade token an API may allow.
const UpgradeWebSocket = "websocket"

// Validate returns every problem with the streaming settings.
func (s *Streaming) Validate() validation.Errors {
	var errs validation.Errors
	for i, ct := range s.ContentTypes {
		_, params, err := mime.ParseMediaType(ct)
		if err != nil || len(params) > 0 {
			errs.Add(validation.Index("content_types", i), "must be a media type without parameters, like text/event-stream, got %q", ct)
		}
	}
	if s.MinBytes < 0 {
		errs.Add("min_bytes", "must not be negative")
	}
	if s.IdleTimeout < 0 {
		errs.Add("idle_timeout", "must not be negative")
	}
	if len(s.ContentTypes) == 0 && !s.Chunked && s.MinBytes == 0 {
		errs.Add("", "selects no response: set content_types, chunked or min_bytes")
	}
	return errs
}

// StreamsContentType reports whether a response Content-Type value selects
// streaming (its media type, ignoring case and parameters, is listed).
func (s *Streaming) StreamsContentType(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	for _, t := range s.ContentTypes {
		if bytes.EqualFold([]byte(t), ct) {
			return true
		}
	}
	return false
}

// AllowsUpgrade reports whether the API allows switching to protocol
// (compared ignoring case).
func (a *API) AllowsUpgrade(protocol []byte) bool {
	for _, u := range a.Upgrades {
		if strings.EqualFold(u, string(protocol)) {
			return true
		}
	}
	return false
}

func validateUpgrades(errs *validation.Errors, ups []string) {
	seen := map[string]bool{}
	for i, u := range ups {
		switch {
		case u != UpgradeWebSocket:
			errs.Add(validation.Index("upgrades", i), "unknown upgrade %q: the gateway can tunnel only %q", u, UpgradeWebSocket)
		case seen[u]:
			errs.Add(validation.Index("upgrades", i), "%q is listed twice", u)
		}
		seen[u] = true
	}
}
