package server

import (
	"errors"
	"net/netip"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/internal/auth"
	"github.com/sluicegw/sluice/gateway/internal/jwtauth"
	"github.com/sluicegw/sluice/gateway/internal/limit"
	"github.com/sluicegw/sluice/gateway/internal/proxy"
	"github.com/sluicegw/sluice/gateway/internal/reqpath"
	"github.com/sluicegw/sluice/gateway/internal/router"
	"github.com/sluicegw/sluice/gateway/internal/state"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/usage"
)

// exchange is the per-request scratch state, pooled. Nothing in it outlives
// the handler call that filled it: byte slices of the RequestCtx are copied
// into its buffers or not kept at all.
type exchange struct {
	start    time.Time
	snap     *state.Snapshot
	api      *state.API
	route    *router.Route
	endpoint *router.Endpoint
	sess     *auth.Session
	token    bool // sess is a token identity's
	target   reqpath.Path
	path     []byte // the request path decoded once, normalised: target.Decoded()
	rest     []byte // path relative to the listen path, a slice of path
	lreq     limit.Request
	dec      limit.Decision
	limited  string
	ev       usage.Event
	rid      []byte        // request id (requestid.go), kept for the log and the usage event
	upstream time.Duration // time spent in the upstream call
	err      *Error        // the error that answered the request, nil when served

	// limit_by scratch: the client address (found once) and the values
	// hashed into a counter key.
	client    netip.Addr
	clientSet bool
	byBuf     []byte

	// units: the request's cost (usage event) and whether a limit reserved
	// one to settle after the response.
	units    int64
	reserved bool

	// claims of a verified token, set upstream by forward after the
	// hop-by-hop strip.
	claims *jwtauth.Result

	// stream is the body of a streamed response (stream.go).
	stream *stream
	// upload is a request body forwarded as it arrives, body the buffer
	// of one read whole (upload.go).
	upload *upload
	body   []byte

	trace requestTrace // the request's spans (tracing.go), zero when off
}

func (x *exchange) reset(now time.Time) {
	x.start, x.snap, x.api, x.route, x.endpoint, x.sess = now, nil, nil, nil, nil, nil
	x.claims, x.stream, x.upload = nil, nil, nil
	if cap(x.body) > maxKeptBody {
		x.body = nil
	}
	x.path, x.rest, x.limited, x.token = nil, nil, "", false
	x.client, x.clientSet = netip.Addr{}, false
	x.units, x.reserved = 0, false
	x.lreq.Rules, x.lreq.Quotas = x.lreq.Rules[:0], x.lreq.Quotas[:0]
	x.dec = limit.Decision{}
	x.rid, x.upstream, x.err = x.rid[:0], 0, nil
}

// handle is the request path: each stage either lets the request go on or
// returns the *Error that answers it.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	x := s.pool.Get().(*exchange)
	x.reset(time.Now())
	s.requestID(ctx, x)
	s.traceRequest(ctx, x)
	err := checkFraming(ctx)
	if err == nil {
		err = s.traced(ctx, x, spanRoute, s.route)
	}
	if err == nil {
		err = s.readBody(ctx, x) // upload.go: read whole, or streamed once judged
	}
	if err == nil {
		err = s.traced(ctx, x, spanAuthenticate, s.authenticate)
	}
	if err == nil {
		err = s.authorize(ctx, x)
	}
	if err == nil {
		err = s.traced(ctx, x, spanLimit, s.limit)
	}
	if err == nil {
		err = s.forward(ctx, x)
		s.settle(ctx, x, err != nil)
	}
	if err != nil {
		writeError(ctx, err)
	}
	x.err = err
	if x.stream.handOff() {
		return // the response streams: its stream records x when it ends
	}
	s.record(ctx, x)
	s.release(x)
}

func (s *Server) release(x *exchange) {
	x.snap, x.api, x.route, x.endpoint, x.sess, x.stream, x.upload = nil, nil, nil, nil, nil, nil, nil
	s.pool.Put(x)
}

// route normalises the request path (reqpath: once, from the raw
// request-target; every later stage and the upstream see this form), then
// matches the API by host and longest listen path, and the endpoint inside
// it by method and path. A path that reaches its API's listen path only by
// climbing out of another with ".." is refused.
func (s *Server) route(ctx *fasthttp.RequestCtx, x *exchange) *Error {
	if !s.state.Loaded() {
		return ErrNotReady
	}
	if err := x.target.ParseTarget(ctx.Request.Header.RequestURI()); err != nil {
		return pathError(err)
	}
	x.path = x.target.Decoded()
	x.snap = s.state.Snapshot()
	r := x.snap.Table.Match(ctx.Host(), x.path)
	if r == nil {
		return ErrNotFound
	}
	if !x.target.Within(len(r.Prefix)) {
		return ErrPathLeavesAPI
	}
	x.route, x.api = r, x.snap.APIs[r.Index]
	x.rest = r.Rest(x.path)
	x.endpoint = r.Endpoint(ctx.Method(), x.rest)
	return nil
}

// authenticate finds the session of the request's credential, per the
// API's auth mode: none (keyless), an API key, a JWT, or, for an API key
// API with JWT settings, whichever of the two comes first (see
// authenticateEither). Header bounds are checked first (checkHeaders), so
// a request refused for them costs no lookup and no limit. Once
// authenticated, every place the API reads a credential from is emptied
// (stripCredentials): the upstream never receives one.
func (s *Server) authenticate(ctx *fasthttp.RequestCtx, x *exchange) *Error {
	if err := s.checkHeaders(ctx); err != nil {
		return err
	}
	a := &x.api.Auth
	var err *Error
	switch a.Mode {
	case model.AuthKeyless:
		return nil
	case model.AuthJWT:
		err = s.authenticateJWT(ctx, x)
	case model.AuthMTLS:
		err = s.authenticateCert(ctx, x)
	case model.AuthAPIKey:
		if a.MTLS {
			err = s.authenticateKeyOrCert(ctx, x)
			break
		}
		if x.api.JWT != nil {
			err = s.authenticateEither(ctx, x)
			break
		}
		key, _, ferr := auth.FindKey(&ctx.Request, a.Header, a.QueryParam, nil)
		if ferr != nil {
			return ErrAmbiguousCredentials
		}
		err = s.authenticateKey(ctx, x, key)
	default:
		s.warnFor(x, errors.New(a.Mode), "api auth mode not supported by this gateway")
		return ErrInternal
	}
	if err == nil {
		stripCredentials(&ctx.Request, x.api)
	}
	return err
}

// authenticateKey finds the session of an API key. A key that cannot be
// verified because the store is down is never served as that key: 503,
// whatever the API's on_store_error. A session the node holds but could
// not re-read (auth.ErrStale) is served on a fail-open API.
func (s *Server) authenticateKey(ctx *fasthttp.RequestCtx, x *exchange, key []byte) *Error {
	switch {
	case len(key) == 0:
		return ErrMissingKey
	case len(key) < s.opts.MinKeyLength:
		return ErrInvalidKey
	}
	sess, err := s.state.Sessions().Lookup(s.base, auth.SumKey(key))
	switch {
	case errors.Is(err, auth.ErrUnknownKey):
		return ErrInvalidKey
	case errors.Is(err, auth.ErrStale) && x.api.FailOpen:
		// the store is down: served as the node last read it
	case err != nil:
		s.warnFor(x, err, "api key lookup failed")
		return ErrStoreDown
	}
	if sess.Cert {
		return ErrInvalidKey // a certificate's record is no key (mtls.go)
	}
	switch sess.Usable(x.start) {
	case auth.ErrExpired:
		return ErrKeyExpired
	case auth.ErrDisabled:
		return ErrKeyDisabled
	}
	x.sess = sess
	return nil
}

// authorize checks the session's access rights for the API, method and path.
func (s *Server) authorize(ctx *fasthttp.RequestCtx, x *exchange) *Error {
	if x.sess != nil && !x.sess.Allowed(x.api.ID, ctx.Method(), x.rest) {
		if x.token {
			ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, wwwInsufficientScope)
			return ErrTokenForbidden
		}
		return ErrForbidden
	}
	return nil
}

// limit checks and consumes every rate limit and quota that applies, in one
// limiter decision: the API's, the endpoint's, and the session's.
func (s *Server) limit(ctx *fasthttp.RequestCtx, x *exchange) *Error {
	req := &x.lreq
	req.APIID, req.FailOpen = x.api.ID, x.api.FailOpen
	if l := x.api.RateLimit; l != nil {
		key := store.APIRateCounter
		if len(l.LimitBy) > 0 {
			var err *Error
			if key, err = s.limitByKey(ctx, x, key, l); err != nil {
				return err
			}
		}
		req.Rules = append(req.Rules, limit.Rule{Key: key, Name: "api", Limit: *l})
	}
	if e := x.endpoint; e != nil && e.Limit != nil {
		key := x.api.EndpointKey[e.Index]
		switch {
		case len(e.Limit.LimitBy) > 0:
			var err *Error
			if key, err = s.limitByKey(ctx, x, key, e.Limit); err != nil {
				return err
			}
		case x.sess != nil:
			key = store.EndpointKeyRateCounter(x.api.EndpointKeyPrefix[e.Index], x.sess.Hash)
		}
		req.Rules = append(req.Rules, limit.Rule{Key: key, Name: x.api.EndpointName[e.Index], Limit: *e.Limit})
	}
	if x.sess != nil {
		for i := range x.sess.Limits {
			if l := &x.sess.Limits[i]; l.AppliesTo(x.api.ID) {
				req.Rules = append(req.Rules, limit.Rule{Key: l.Key, Name: l.Name, Limit: l.Limit, KeyScope: l.KeyScope})
			}
		}
		for i := range x.sess.Quotas {
			if q := &x.sess.Quotas[i]; q.AppliesTo(x.api.ID) {
				req.Quotas = append(req.Quotas, limit.QuotaRule{Key: q.Key, Name: q.Name, Quota: q.Quota, KeyScope: q.KeyScope})
			}
		}
		if x.sess.Org != "" {
			orgLimits(req, x.snap.Org(x.sess.Org))
		}
	}
	if err := s.unitCosts(ctx, x); err != nil {
		return err
	}
	s.limiter.Check(s.base, req, &x.dec)
	if x.dec.Outcome != limit.Allowed {
		x.units = 0 // nothing counted
	}
	switch x.dec.Outcome {
	case limit.Limited:
		x.dec.WriteHeaders(&ctx.Response.Header)
		x.limited = x.dec.Reason
		if x.dec.Reason == limit.ReasonQuota {
			return ErrQuotaExceeded
		}
		return ErrRateLimited
	case limit.Unavailable:
		x.dec.WriteHeaders(&ctx.Response.Header)
		s.warnFor(x, x.dec.Err, "rate limit store unavailable, api fails closed")
		return ErrStoreDown
	}
	return nil
}

// forward proxies the request to the API's upstream and keeps its answer
// as the response, with hop-by-hop headers removed and rate-limit headers
// added.
func (s *Server) forward(ctx *fasthttp.RequestCtx, x *exchange) *Error {
	if x.api.Upstream == nil {
		return ErrUpstreamDown
	}
	if isUpgrade(ctx) {
		return s.forwardUpgrade(ctx, x) // upgrade.go
	}
	closeConn := ctx.Request.Header.ConnectionClose()
	if err := s.forwardHeaders(ctx, x); err != nil {
		return err
	}
	from := 0
	if x.api.StripListenPath {
		from = len(x.route.Prefix)
	}
	if x.api.Streaming != nil || x.upload != nil {
		if err := s.forwardStream(ctx, x, from); err != nil {
			return err
		}
	} else if err := s.upstreamDo(ctx, x, from); err != nil {
		return s.upstreamError(ctx, err)
	}
	if err := proxy.StripResponse(&ctx.Response); err != nil {
		s.warnFor(x, err, "upstream response refused")
		ctx.Response.Reset()
		return ErrUpstreamDown
	}
	if closeConn {
		ctx.SetConnectionClose()
	}
	if x.dec.HasLimit {
		x.dec.WriteHeaders(&ctx.Response.Header)
	}
	return nil
}

// record counts the request and emits its usage event (never waiting). The
// event's ID is left empty: the publisher fills a unique one in.
func (s *Server) record(ctx *fasthttp.RequestCtx, x *exchange) {
	status := ctx.Response.StatusCode()
	lat := time.Since(x.start)
	if x.streamed() {
		status, lat = x.stream.outcome()
	}
	id := "none"
	if x.api != nil {
		id = x.api.ID
	}
	s.m.forAPI(id).observe(status, lat.Seconds())
	s.m.authFailure(id, x.err)
	s.traceEnd(x, status)
	ctx.Response.Header.SetBytesV(s.rid.header, x.rid)
	s.accessLog(ctx, x, status, lat)
	if x.api == nil || s.usage == nil {
		return
	}
	e := &x.ev
	// Path and RequestID view x's buffers: Emit encodes before it returns.
	*e = usage.Event{
		Time:      x.start.UnixNano(),
		Node:      s.opts.Node,
		API:       x.api.ID,
		Method:    methodName(ctx.Method()),
		Path:      view(x.path),
		Status:    status,
		Latency:   lat.Microseconds(),
		BytesIn:   bytesIn(ctx, x),
		BytesOut:  bytesOut(ctx, x),
		Limited:   x.limited,
		RequestID: view(x.rid),
		Units:     x.units,
	}
	if x.sess != nil {
		e.KeyHash, e.KeyID, e.KeyAlias = x.sess.Hash, x.sess.KeyID, x.sess.Alias
	}
	if x.endpoint != nil {
		e.Endpoint = x.endpoint.Pattern.String()
	}
	if x.streamed() {
		x.stream.fill(e)
	}
	s.usage.Emit(e)
}

// view returns b as a string without copying, for a value used only while
// b is unchanged (the usage event, encoded by Emit before it returns).
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

var methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}

// methodName returns method as a string, without allocating for the
// standard methods.
func methodName(m []byte) string {
	for _, s := range methods {
		if s == string(m) {
			return s
		}
	}
	return string(m)
}
