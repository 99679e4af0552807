package proxy

import (
	"errors"
	"io"
	"syscall"

	"github.com/valyala/fasthttp"
)

// Causes of upstream errors, a bounded set for metric labels.
const (
	CauseConnect = "connect" // no connection could be made
	CauseTimeout = "timeout" // connect, write or read timed out
	CauseReset   = "reset"   // the connection was reset or closed mid-exchange
	CauseOther   = "other"
)

// Causes lists every cause Cause returns.
var Causes = []string{CauseConnect, CauseTimeout, CauseReset, CauseOther}

// Cause classifies an error of Upstream.Do.
func Cause(err error) string {
	var de *dialError
	switch {
	case errors.Is(err, ErrUpstreamTimeout):
		return CauseTimeout
	case errors.As(err, &de), errors.Is(err, syscall.ECONNREFUSED):
		return CauseConnect
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, fasthttp.ErrConnectionClosed):
		return CauseReset
	}
	return CauseOther
}
