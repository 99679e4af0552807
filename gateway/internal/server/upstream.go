package server

import (
	"time"

	"github.com/valyala/fasthttp"
)

// upstreamDo sends the request to the API's upstream and times the call,
// for the access log and the upstream metrics.
func (s *Server) upstreamDo(ctx *fasthttp.RequestCtx, x *exchange, from int) error {
	t := time.Now()
	err := x.api.Upstream.Do(&ctx.Request, &ctx.Response, &x.target, from)
	x.upstream = time.Since(t)
	x.traceUpstreamDone(ctx.Response.StatusCode(), err)
	s.m.upstream(x.api.ID, x.upstream, err)
	return err
}
