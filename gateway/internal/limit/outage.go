package limit

import (
	"fmt"
	"time"
)

// When Redis fails or times out, the limiter stops calling it for
// Options.StoreRetry and decides on its own: APIs that fail open go to the
// per-node fallback limiter (fallback.go), APIs that fail closed get
// Unavailable. The next call after that interval tries Redis again, so it
// recovers by itself. Errors are logged at most once per LogInterval.

var errStoreSkipped = fmt.Errorf("limit store skipped after recent errors")

// decideWithoutStore decides while Redis is unreachable.
func (l *Limiter) decideWithoutStore(req *Request, d *Decision) {
	if !req.FailOpen {
		d.Outcome, d.RetryAfter = Unavailable, max(l.opts.StoreRetry, time.Second)
		l.m.decided(sourceStore, req.APIID, d)
		return
	}
	l.fb.decide(req, d, time.Now().UnixMicro())
	if d.ShadowLimited {
		l.m.shadow.Inc()
	}
	l.m.decided(sourceFallback, req.APIID, d)
}

func (l *Limiter) storeDown() bool {
	return time.Now().UnixNano() < l.downUntil.Load()
}

// storeError skips Redis for StoreRetry and logs at most once per
// LogInterval.
func (l *Limiter) storeError(err error) {
	l.m.storeErrors.Inc()
	now := time.Now().UnixNano()
	l.downUntil.Store(now + int64(l.opts.StoreRetry))
	l.failing.Store(true)
	n := l.errsSinceLog.Add(1)
	last := l.lastLog.Load()
	if now-last >= int64(l.opts.LogInterval) && l.lastLog.CompareAndSwap(last, now) {
		l.errsSinceLog.Add(-n)
		l.log.Warn().Err(err).Int64("errors", n).Dur("retry_in", l.opts.StoreRetry).
			Msg("limit store unreachable: deciding with the fallback limiter (fail open) or refusing (fail closed)")
	}
}

func (l *Limiter) storeOK() {
	if l.failing.Load() && l.failing.CompareAndSwap(true, false) {
		l.log.Info().Msg("limit store reachable again")
	}
}
