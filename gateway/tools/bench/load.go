package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Load describes one run of the built-in load generator.
type Load struct {
	URL         string
	Headers     [][2]string
	Concurrency int           // connections, one worker each
	Duration    time.Duration // how long to send
	// Rate, when > 0, sends at this constant rate (requests/s) in total,
	// with Concurrency connections. A request's latency counts from the
	// moment it was released by the pacer, not from when a connection was
	// free to send it (as wrk2 does), so a stalled server is not hidden by
	// a stalled generator. 0 sends as fast as the server answers.
	Rate        float64
	MaxRequests int64 // hard bound on requests sent (0: 10 million)
	Timeout     time.Duration
	// TLS configures an https URL's connections (kept alive, as for http).
	TLS *tls.Config
}

// Recorder holds what a load run measured, in total and per second.
type Recorder struct {
	start   time.Time
	seconds []*Histogram
	ok      atomic.Int64 // 2xx answers
	non2xx  atomic.Int64 // other statuses
	errs    atomic.Int64 // transport errors and timeouts
	sent    atomic.Int64
}

// NewRecorder returns a recorder for a run starting at start and lasting up
// to d.
func NewRecorder(start time.Time, d time.Duration) *Recorder {
	n := int(d/time.Second) + 2
	r := &Recorder{start: start, seconds: make([]*Histogram, n)}
	for i := range r.seconds {
		r.seconds[i] = new(Histogram)
	}
	return r
}

func (r *Recorder) record(at time.Time, lat time.Duration, status int, err error) {
	switch {
	case err != nil:
		r.errs.Add(1)
		return
	case status >= 200 && status < 300:
		r.ok.Add(1)
	default:
		r.non2xx.Add(1)
	}
	s := int(at.Sub(r.start) / time.Second)
	s = min(max(s, 0), len(r.seconds)-1)
	r.seconds[s].Record(lat)
}

// Total merges every second's histogram.
func (r *Recorder) Total() *Histogram {
	h := new(Histogram)
	for _, s := range r.seconds {
		h.Merge(s)
	}
	return h
}

// Second returns the histogram of second i of the run.
func (r *Recorder) Second(i int) *Histogram { return r.seconds[i] }

// Seconds is the number of per-second histograms.
func (r *Recorder) Seconds() int { return len(r.seconds) }

// Counts returns 2xx answers, other statuses and errors so far.
func (r *Recorder) Counts() (ok, non2xx, errs int64) {
	return r.ok.Load(), r.non2xx.Load(), r.errs.Load()
}

// Generate runs the load l and records into rec, which must start when the
// run starts. It returns when the duration is over, MaxRequests were sent,
// or ctx ends.
func Generate(ctx context.Context, l Load, rec *Recorder) error {
	u, err := url.Parse(l.URL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("load url %q: %v", l.URL, err)
	}
	if l.Concurrency <= 0 {
		l.Concurrency = 1
	}
	if l.MaxRequests <= 0 {
		l.MaxRequests = 10_000_000
	}
	if l.Timeout <= 0 {
		l.Timeout = 5 * time.Second
	}
	hc := &fasthttp.HostClient{
		Addr:                          u.Host,
		MaxConns:                      l.Concurrency,
		ReadTimeout:                   l.Timeout,
		WriteTimeout:                  l.Timeout,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		IsTLS:                         u.Scheme == "https",
		TLSConfig:                     l.TLS,
	}
	defer hc.CloseIdleConnections()
	end := rec.start.Add(l.Duration)
	var tokens chan token
	if l.Rate > 0 {
		tokens = make(chan token, 1<<16)
		go pace(ctx, l.Rate, rec.start, end, tokens)
	}
	var wg sync.WaitGroup
	for w := 0; w < l.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker(ctx, hc, l, rec, end, tokens)
		}()
	}
	wg.Wait()
	return nil
}

// token is one request of a constant-rate run: when it was due and when the
// pacer released it (a little later, by the timer's granularity).
type token struct{ due, released time.Time }

// pace releases a token for each request due at rate from start until end.
// A token waiting for a free worker (every connection busy) keeps its
// release time, so that wait counts as latency, as it would for a client
// whose requests queue behind a slow server.
func pace(ctx context.Context, rate float64, start, end time.Time, out chan<- token) {
	defer close(out)
	interval := time.Duration(float64(time.Second) / rate)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k := int64(0); ; {
		now := time.Now()
		for due := start.Add(time.Duration(k) * interval); !due.After(now); due = start.Add(time.Duration(k) * interval) {
			if !due.Before(end) {
				return
			}
			select {
			case out <- token{due: due, released: now}:
			case <-ctx.Done():
				return
			}
			k++
		}
		timer.Reset(time.Until(start.Add(time.Duration(k) * interval)))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

func worker(ctx context.Context, hc *fasthttp.HostClient, l Load, rec *Recorder, end time.Time, tokens <-chan token) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(l.URL)
	for _, h := range l.Headers {
		req.Header.Set(h[0], h[1])
	}
	for ctx.Err() == nil {
		var from time.Time
		if tokens != nil {
			t, ok := <-tokens
			if !ok {
				return
			}
			from = t.released
		} else if from = time.Now(); !from.Before(end) {
			return
		}
		if rec.sent.Add(1) > l.MaxRequests {
			return
		}
		err := hc.DoTimeout(req, resp, l.Timeout)
		rec.record(from, time.Since(from), resp.StatusCode(), err)
	}
}
