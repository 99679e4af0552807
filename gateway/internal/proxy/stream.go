package proxy

import (
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/internal/reqpath"
)

// DoStream is Do for a response read as it arrives: once it returns nil,
// resp holds the upstream's status and headers, and its body (if any) is
// resp.BodyStream(), unread. The caller reads it, bounding each wait with
// the deadline of StreamConn(resp), and must close it
// (resp.CloseBodyStream): a stream closed before its end closes the
// upstream connection, so the upstream sees the request cancelled.
// upstream.read_timeout bounds the wait for the response headers.
func (u *Upstream) DoStream(req *fasthttp.Request, resp *fasthttp.Response, path *reqpath.Path, from int) error {
	return u.roundTrip(req, resp, path, from, true)
}

// StreamConn returns the upstream connection a response of DoStream is read
// from, to set its read deadline, or nil for a response DoStream did not
// fill.
func StreamConn(resp *fasthttp.Response) net.Conn {
	if a, ok := resp.LocalAddr().(*connAddr); ok {
		return a.conn
	}
	return nil
}

// streamConn is a connection of a streaming client. The client keeps only
// its addresses in the response (Response.ParseNetConn), so its local
// address carries the connection back to the caller.
type streamConn struct {
	net.Conn
	local connAddr
	write time.Duration // each Write's deadline from its start, 0: none
}

type connAddr struct {
	net.Addr
	conn net.Conn
}

func newStreamConn(c net.Conn, write time.Duration) *streamConn {
	sc := &streamConn{Conn: c, write: write}
	sc.local = connAddr{Addr: c.LocalAddr(), conn: c}
	return sc
}

func (c *streamConn) LocalAddr() net.Addr { return &c.local }

func (c *streamConn) Write(p []byte) (int, error) {
	if c.write > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.write)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}

// MaxResponseBody is the response body bound of the upstream's clients
// (0: unbounded). DoStream's caller applies it while it reads.
func (u *Upstream) MaxResponseBody() int64 { return int64(u.opts.MaxResponseBodySize) }

// ReadTimeout is the upstream's read timeout (its own, else the gateway's).
func (u *Upstream) ReadTimeout() time.Duration {
	return pick(u.cfg.ReadTimeout.D(), u.opts.ReadTimeout)
}
