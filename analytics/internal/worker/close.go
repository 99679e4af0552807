package worker

import (
	"context"
	"encoding/json"
	"time"

	"github.com/sluicegw/sluice/analytics/internal/rollup"
)

// closeMinutes closes every API's minutes that are past the grace window
// and republishes each closed minute on <ns>.rollup.<api>. Several workers
// may run it at once: the close script hands each minute to exactly one.
func (w *Worker) closeMinutes(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, w.opts.RedisTimeout)
	defer cancel()
	apis, err := w.store.APIs(rctx)
	if err != nil {
		w.m.redisErrs.Inc()
		return
	}
	now := w.opts.Now()
	cutoff := rollup.Cutoff(now, w.opts.Grace)
	for _, api := range apis {
		closed, err := w.store.Close(rctx, api, cutoff, now)
		if err != nil {
			w.m.redisErrs.Inc()
			w.log.Warn().Err(err).Str("api", api).Msg("close usage minutes")
			continue
		}
		for _, c := range closed {
			w.m.closed.Inc()
			data, err := json.Marshal(rollup.RollupOf(api, c.Minute, &c.Counts))
			if err == nil {
				_ = w.nc.Publish(w.opts.Names.RollupSubject(api), data)
			}
		}
	}
}

// measureLag sets the lag gauge to the age of the oldest event the shared
// consumer has not had acknowledged (0 when it is caught up).
func (w *Worker) measureLag(ctx context.Context) {
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := w.cons.Info(ictx)
	if err != nil {
		return
	}
	w.m.pending.Set(float64(info.NumPending))
	w.m.ackPending.Set(float64(info.NumAckPending))
	if info.NumPending == 0 && info.NumAckPending == 0 {
		w.m.lag.Set(0)
		return
	}
	msg, err := w.stream.GetMsg(ictx, info.AckFloor.Stream+1)
	if err != nil {
		return
	}
	w.m.lag.Set(time.Since(msg.Time).Seconds())
}
