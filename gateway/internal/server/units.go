package server

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/internal/limit"
	"github.com/sluicegw/sluice/pkg/model"
)

// Units: a limit may count a cost per request instead of requests
// (model.Units). A fixed or request-declared cost is known before the
// decision; a cost the response gives is reserved before forwarding and
// settled after it (limit.Limiter.Settle): the rest given back, any excess
// counted.

// unitCosts sets the cost of every rule and quota of the decision that
// counts units; a request declaring a cost that is malformed or above the
// limit's max gets 400 bad_cost.
func (s *Server) unitCosts(ctx *fasthttp.RequestCtx, x *exchange) *Error {
	for i := range x.lreq.Rules {
		r := &x.lreq.Rules[i]
		if r.Limit.Units == nil {
			continue
		}
		var err *Error
		if r.Cost, r.Reserve, err = s.unitCost(ctx, x, r.Limit.Units); err != nil {
			return err
		}
	}
	for i := range x.lreq.Quotas {
		q := &x.lreq.Quotas[i]
		if q.Quota.Units == nil {
			continue
		}
		var err *Error
		if q.Cost, q.Reserve, err = s.unitCost(ctx, x, q.Quota.Units); err != nil {
			return err
		}
	}
	return nil
}

// unitCost returns the cost u gives a request before the decision, and
// whether it is a reservation settled after the response.
func (s *Server) unitCost(ctx *fasthttp.RequestCtx, x *exchange, u *model.Units) (int64, bool, *Error) {
	var cost int64
	reserve := false
	switch u.From {
	case model.UnitsFixed:
		cost = u.Cost
	case model.UnitsRequestHeader:
		n, ok := parseCost(ctx.Request.Header.Peek(u.Header))
		if !ok || n < 1 || n > u.Max {
			return 0, false, costError(u)
		}
		cost = n
	default:
		cost, reserve = u.Reserve, true
		x.reserved = true
	}
	if x.units == 0 {
		x.units = cost
	}
	return cost, reserve, nil
}

// settle settles the reservations of an allowed request once its response
// is in (failed: no usable answer, every reservation given back). A cost
// the response does not give (header missing, not a number) keeps the
// reservation as the cost. A streamed response settles when its stream
// ends (settleStream).
func (s *Server) settle(ctx *fasthttp.RequestCtx, x *exchange, failed bool) {
	if !x.reserved || x.dec.Outcome != limit.Allowed {
		return
	}
	if settlesAtEnd(x) && !failed { // a streamed response: ssecost.go
		x.stream.costs = streamCosts(x, &ctx.Response.Header)
		x.stream.settle = true
		return
	}
	first := true
	for i := range x.lreq.Rules {
		r := &x.lreq.Rules[i]
		if !r.Reserve {
			continue
		}
		r.Actual = limit.SettleFailed
		if !failed {
			r.Actual = responseCost(&ctx.Response, r.Limit.Units)
		}
		if first {
			x.units, first = r.Actual, false
		}
	}
	for i := range x.lreq.Quotas {
		q := &x.lreq.Quotas[i]
		if !q.Reserve {
			continue
		}
		q.Actual = limit.SettleFailed
		if !failed {
			q.Actual = responseCost(&ctx.Response, q.Quota.Units)
		}
		if first {
			x.units, first = q.Actual, false
		}
	}
	s.limiter.Settle(&x.lreq, &x.dec)
}

// responseCost reads the cost of a response, or the reservation when the
// response does not give one.
func responseCost(resp *fasthttp.Response, u *model.Units) int64 {
	var n int64
	var ok bool
	if u.From == model.UnitsResponseHeader {
		n, ok = parseCost(resp.Header.Peek(u.Header))
	} else {
		n, ok = jsonCost(resp.Body(), u.Path)
	}
	if !ok {
		return u.Reserve
	}
	return n
}

// parseCost reads a non-negative decimal integer of at most 18 digits.
func parseCost(b []byte) (int64, bool) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// jsonCost finds the non-negative integer at the dotted path of a JSON
// document (objects only), e.g. "usage.total_tokens". It reads the body
// the proxy already holds (bounded by the body limit) token by token,
// skipping what is not on the path, so it never decodes the document.
func jsonCost(body []byte, path string) (int64, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		name, rest, _ := cutDot(path)
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			return 0, false
		}
		for {
			t, err := dec.Token()
			if err != nil || t == json.Delim('}') {
				return 0, false
			}
			if k, _ := t.(string); k == name {
				break
			}
			if !skipValue(dec) {
				return 0, false
			}
		}
		if rest == "" {
			t, err := dec.Token()
			num, isNum := t.(json.Number)
			if err != nil || !isNum {
				return 0, false
			}
			n, err := strconv.ParseInt(string(num), 10, 64)
			if err != nil || n < 0 {
				f, ferr := num.Float64()
				if ferr != nil || f < 0 || f > 1e18 || f != float64(int64(f)) {
					return 0, false
				}
				n = int64(f)
			}
			return n, true
		}
		path = rest
	}
}

func cutDot(p string) (string, string, bool) {
	for i := 0; i < len(p); i++ {
		if p[i] == '.' {
			return p[:i], p[i+1:], true
		}
	}
	return p, "", false
}

// skipValue reads one whole value from dec.
func skipValue(dec *json.Decoder) bool {
	depth := 0
	for {
		t, err := dec.Token()
		if err != nil {
			return false
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return true
		}
	}
}

func costError(u *model.Units) *Error {
	return newError(fasthttp.StatusBadRequest, "bad_cost",
		"header "+strconv.Quote(u.Header)+" must hold the request's cost, an integer from 1 to "+strconv.FormatInt(u.Max, 10))
}
