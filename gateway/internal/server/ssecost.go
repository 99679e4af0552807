package server

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/internal/limit"
	"github.com/sluicegw/sluice/pkg/model"
)

// Cost from a stream: a limit whose units come from the JSON response
// body (model.UnitsResponseJSON) is settled on a streamed response too.
// The response is never held: sseCost follows the server-sent events as
// they pass (stream.Read) and reads the cost at the unit path in the data
// of each event, keeping the last one found, the way an OpenAI-style stream
// ends with an event carrying the usage of the whole answer
// (`data: {..."usage":{"total_tokens":N}}`, then `data: [DONE]`).
//
// Each event is scanned within a bound: the bytes of its data lines are
// kept up to maxEventBytes, and an event whose data is longer is skipped
// (its cost is not read). A streamed response that is not
// text/event-stream is not scanned. The settlement happens when the stream
// ends: at the last cost found, or at the reservation when none was (the
// answer, whole or not, went out; nothing is given back).

// maxEventBytes bounds the data of one event the cost scanner reads.
const maxEventBytes = 64 << 10

// sseCost finds the cost at path in the events of a text/event-stream
// body fed to it in pieces of any size.
type sseCost struct {
	path  string
	line  []byte // the current line so far, up to maxEventBytes
	long  bool   // the current line passed the bound
	data  []byte // the current event's data (lines joined with "\n")
	over  bool   // the current event's data passed the bound
	cr    bool   // the last byte was a CR: a following LF ends no line
	cost  int64
	found bool
}

func newSSECost(path string) *sseCost { return &sseCost{path: path} }

// feed scans p, the next bytes of the stream.
func (c *sseCost) feed(p []byte) {
	for len(p) > 0 {
		if c.cr && p[0] == '\n' { // CRLF: the CR ended the line
			p = p[1:]
			c.cr = false
			continue
		}
		c.cr = false
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			c.addLine(p)
			return
		}
		c.addLine(p[:i])
		c.cr = p[i] == '\r'
		c.endLine()
		p = p[i+1:]
	}
}

func (c *sseCost) addLine(b []byte) {
	if c.long || len(c.line)+len(b) > maxEventBytes {
		c.long, c.line = true, c.line[:0]
		return
	}
	c.line = append(c.line, b...)
}

// endLine acts on a complete line (SSE, "Interpreting an event stream"):
// an empty line dispatches the event; a "data" field adds its value.
func (c *sseCost) endLine() {
	line, long := c.line, c.long
	c.line, c.long = c.line[:0], false
	switch {
	case long: // its field is unknown: the event is skipped
		c.over = true
	case len(line) == 0:
		c.dispatch()
	case bytes.HasPrefix(line, []byte("data:")):
		v := line[len("data:"):]
		if len(v) > 0 && v[0] == ' ' {
			v = v[1:]
		}
		c.addData(v)
	case bytes.Equal(line, []byte("data")):
		c.addData(nil)
	}
}

func (c *sseCost) addData(v []byte) {
	if c.over || len(c.data)+len(v)+1 > maxEventBytes {
		c.over, c.data = true, c.data[:0]
		return
	}
	c.data = append(append(c.data, v...), '\n')
}

// dispatch reads the cost in the event's data, if any.
func (c *sseCost) dispatch() {
	data, over := c.data, c.over
	c.data, c.over = c.data[:0], false
	if over || len(data) == 0 || data[0] != '{' {
		return // too long, no data, or no JSON object ("[DONE]")
	}
	if n, ok := jsonCost(data[:len(data)-1], c.path); ok {
		c.cost, c.found = n, true
	}
}

// result is the last cost found, and whether one was.
func (c *sseCost) result() (int64, bool) { return c.cost, c.found }

// streamCosts prepares the settlement of a streamed response's
// reservations at the stream's end: for each reserving rule whose units
// come from the JSON body, a scanner when the response is an event
// stream.
func streamCosts(x *exchange, h *fasthttp.ResponseHeader) []*sseCost {
	sseBody := bytes.EqualFold(mediaType(h.ContentType()), []byte("text/event-stream"))
	var costs []*sseCost
	for i := range x.lreq.Rules {
		r := &x.lreq.Rules[i]
		if !r.Reserve {
			continue
		}
		var c *sseCost
		if sseBody && r.Limit.Units.From == model.UnitsResponseJSON {
			c = newSSECost(r.Limit.Units.Path)
		}
		costs = append(costs, c)
	}
	return costs
}

func mediaType(ct []byte) []byte {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return bytes.TrimSpace(ct)
}

// settleStream settles the reservations of a streamed exchange as its
// stream ends: a response header cost from the response's headers, a JSON
// cost from the last event that gave one, else the reservation.
func (s *Server) settleStream(ctx *fasthttp.RequestCtx, x *exchange, costs []*sseCost) {
	first, j := true, 0
	for i := range x.lreq.Rules {
		r := &x.lreq.Rules[i]
		if !r.Reserve {
			continue
		}
		u := r.Limit.Units
		r.Actual = u.Reserve
		switch {
		case u.From == model.UnitsResponseHeader:
			if n, ok := parseCost(ctx.Response.Header.Peek(u.Header)); ok {
				r.Actual = n
			}
		case j < len(costs) && costs[j] != nil:
			if n, ok := costs[j].result(); ok {
				r.Actual = n
			}
		}
		j++
		if first {
			x.units, first = r.Actual, false
		}
	}
	s.limiter.Settle(&x.lreq, &x.dec)
}

// settlesAtEnd reports whether x's reservations wait for its stream's end.
func settlesAtEnd(x *exchange) bool {
	return x.stream != nil && x.reserved && x.dec.Outcome == limit.Allowed
}
