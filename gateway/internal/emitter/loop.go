package emitter

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sluicegw/sluice/pkg/usage"
)

// loopState is owned by the loop goroutine.
type loopState struct {
	ready    []*batch          // sealed, waiting to be published (retries first)
	taken    []*batch          // scratch: batches just taken from the shards
	joining  map[string]*batch // scratch: API id -> its last batch sealed by collect
	inflight int
	batchSeq uint64
	streamOK bool
	backoff  time.Duration
	retryAt  time.Time
	lastLog  time.Time
	errs     int
}

// logInterval is the least time between two log lines about publish errors.
const logInterval = 10 * time.Second

const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// loop batches events and publishes them until Shutdown.
func (p *Publisher) loop(streamOK bool) {
	defer close(p.done)
	defer close(p.acks)
	s := &loopState{streamOK: streamOK, joining: make(map[string]*batch)}
	tick := time.NewTicker(p.opts.FlushInterval)
	defer tick.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	stopping, stop := false, p.stop
	for {
		p.publishReady(s, retry)
		if stopping && len(s.ready) == 0 && s.inflight == 0 {
			return
		}
		select {
		case <-p.kick:
			p.collect(s, false, false)
		case <-tick.C:
			p.collect(s, true, false)
		case r := <-p.results:
			p.settle(s, r, retry)
		case <-retry.C:
		case <-stop:
			stopping, stop = true, nil // a nil channel blocks: handled once
			p.collect(s, true, true)
		case <-p.abort:
			lost := p.held.Load()
			p.m.dropped.Add(float64(lost))
			p.log.Warn().Int64("events", lost).Msg("usage events not published before shutdown ended")
			for s.inflight > 0 { // let the acker finish before closing its channel
				<-p.results
				s.inflight--
			}
			return
		}
	}
}

// collect takes the shards' full batches (and their open ones when all is
// set), joins batches of one API while the result stays within a batch's
// bounds, and seals them in the order taken.
func (p *Publisher) collect(s *loopState, all, closing bool) {
	s.taken = p.take(s.taken[:0], all, closing)
	clear(s.joining)
	for i, b := range s.taken {
		s.taken[i] = nil
		if into := s.joining[b.api]; into != nil && into.n+b.n <= p.opts.BatchSize && len(into.data)+len(b.data) <= maxBatchBytes {
			into.data = append(into.data, b.data...)
			into.n += b.n
			p.recycle(b)
			continue
		}
		s.joining[b.api] = b
		p.seal(s, b)
	}
}

// subject is the usage subject of api; events with no API go to "_".
func (p *Publisher) subject(api string) string {
	if api == "" {
		api = "_"
	}
	return p.opts.Names.UsageSubject(api)
}

func (p *Publisher) seal(s *loopState, b *batch) {
	s.batchSeq++
	b.id = p.batchID(s.batchSeq)
	s.ready = append(s.ready, b)
}

// publishReady sends ready batches while in-flight slots are free and no
// backoff is pending.
func (p *Publisher) publishReady(s *loopState, retry *time.Timer) {
	if len(s.ready) == 0 || s.inflight >= p.opts.MaxInFlight {
		return
	}
	if wait := time.Until(s.retryAt); wait > 0 {
		return // the retry timer wakes the loop
	}
	if !s.streamOK {
		if s.streamOK = p.ensureStream(context.Background()); !s.streamOK {
			p.failed(s, retry)
			return
		}
	}
	for len(s.ready) > 0 && s.inflight < p.opts.MaxInFlight {
		b := s.ready[0]
		b.sent = time.Now()
		f, err := p.js.PublishMsgAsync(b.message())
		if err != nil {
			p.m.errors.Inc()
			p.logError(s, err)
			p.failed(s, retry)
			return
		}
		s.ready[0] = nil
		s.ready = s.ready[1:]
		s.inflight++
		p.acks <- inflight{b: b, f: f}
	}
}

// settle records an acknowledgement or puts a failed batch back in front.
func (p *Publisher) settle(s *loopState, r result, retry *time.Timer) {
	s.inflight--
	if r.err != nil {
		p.m.errors.Inc()
		p.logError(s, r.err)
		if errors.Is(r.err, jetstream.ErrNoStreamResponse) || errors.Is(r.err, nats.ErrNoResponders) {
			s.streamOK = false
		}
		s.ready = append([]*batch{r.b}, s.ready...)
		p.failed(s, retry)
		return
	}
	s.backoff = 0
	p.held.Add(-int64(r.b.n))
	p.m.published.Add(float64(r.b.n))
	p.m.batches.Inc()
	p.m.publishTime.Observe(time.Since(r.b.sent).Seconds())
	p.m.batchSize.Observe(float64(r.b.n))
	p.recycle(r.b)
}

// failed backs off before the next publish attempt.
func (p *Publisher) failed(s *loopState, retry *time.Timer) {
	s.backoff = min(max(2*s.backoff, minBackoff), maxBackoff)
	s.retryAt = time.Now().Add(s.backoff)
	retry.Reset(s.backoff)
}

// message is the NATS message of b; the same id on every attempt.
func (b *batch) message() *nats.Msg {
	return &nats.Msg{Subject: b.subject, Data: b.data, Header: nats.Header{
		usage.HeaderVersion: []string{usage.Version},
		usage.HeaderMsgID:   []string{b.id},
	}}
}

// logError logs publish errors at most once per logInterval.
func (p *Publisher) logError(s *loopState, err error) {
	s.errs++
	if time.Since(s.lastLog) < logInterval {
		return
	}
	p.log.Warn().Err(err).Int("errors", s.errs).Int64("buffered", p.held.Load()).
		Msg("usage batches not published yet; retrying while buffered")
	s.lastLog, s.errs = time.Now(), 0
}
