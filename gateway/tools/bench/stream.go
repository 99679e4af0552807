package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// The streaming scenarios fetch large responses and server-sent event
// streams with their own generator (net/http, keep-alive): wrk reports
// neither the time to the first byte nor when each event arrived.
const (
	streamBig = "bytes" // streamBytes per response: TTFB and MiB/s
	streamSSE = "sse"   // sseEvents events sseInterval apart: TTFB and event latency

	streamBytes = 10 << 20
	sseEvents   = 20
	sseInterval = 10 * time.Millisecond
	// Concurrent streams: a few large downloads fill loopback; SSE streams
	// mostly wait, so more of them run at once.
	streamBigConns = 4
	streamSSEConns = 16
)

// serveSSE answers a text/event-stream of sseEvents events, one every
// sseInterval, each flushed as it is written and carrying the time it was
// written (Unix nanoseconds), so the client measures each event's latency.
func serveSSE(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		for i := 0; i < sseEvents; i++ {
			if i > 0 {
				time.Sleep(sseInterval)
			}
			fmt.Fprintf(w, "id: %d\ndata: %d\n\n", i, time.Now().UnixNano())
			if w.Flush() != nil {
				return
			}
		}
	})
}

// StreamResult is what a streaming scenario measured.
type StreamResult struct {
	Kind string `json:"kind"`
	// Bytes of response bodies received, and their rate.
	Bytes int64   `json:"bytes"`
	MiBps float64 `json:"mib_per_second"`
	// TTFB: to the response's first byte (streamBig) or first event
	// (streamSSE), from the request sent.
	TTFBp50ms float64 `json:"ttfb_p50_ms"`
	TTFBp99ms float64 `json:"ttfb_p99_ms"`
	// Events received and their latency, written by the upstream to read
	// by the client (streamSSE).
	Events     int64   `json:"events,omitempty"`
	EventP50ms float64 `json:"event_p50_ms,omitempty"`
	EventP99ms float64 `json:"event_p99_ms,omitempty"`
	// Ratio is MiB/s (streamBig) as a ratio of the bare hop's in the run.
	Ratio float64 `json:"ratio_to_bare_hop,omitempty"`
}

// streamStats is what the stream generator counted.
type streamStats struct {
	requests, non2xx, errs, bytes, events atomic.Int64
	ttfb, event                           Histogram
}

// generateStreams fetches url with conns concurrent streams until d has
// passed (a stream under way then ends first) or ctx ends.
func generateStreams(ctx context.Context, url, kind string, conns int, d time.Duration, st *streamStats) {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(end) {
				fetchStream(ctx, client, url, kind, st)
			}
		}()
	}
	wg.Wait()
}

// fetchStream makes one request and reads its body to the end.
func fetchStream(ctx context.Context, client *http.Client, url, kind string, st *streamStats) {
	start := time.Now()
	var first time.Time
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { first = time.Now() }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, url, nil)
	if err != nil {
		st.errs.Add(1)
		return
	}
	resp, err := client.Do(req)
	if err != nil {
		st.errs.Add(1)
		time.Sleep(10 * time.Millisecond) // a refused connection would spin
		return
	}
	defer resp.Body.Close()
	st.requests.Add(1)
	if resp.StatusCode/100 != 2 {
		st.non2xx.Add(1)
		_, _ = io.Copy(io.Discard, resp.Body)
		return
	}
	if kind == streamBig {
		n, err := io.Copy(io.Discard, resp.Body)
		st.bytes.Add(n)
		if err != nil || n != streamBytes {
			st.errs.Add(1)
			return
		}
		st.ttfb.Record(first.Sub(start))
		return
	}
	n, events, err := readEvents(resp.Body, func(i int, sent, at time.Time) {
		if i == 0 {
			st.ttfb.Record(at.Sub(start))
		}
		st.event.Record(at.Sub(sent))
	})
	st.bytes.Add(n)
	st.events.Add(int64(events))
	if err != nil || events != sseEvents {
		st.errs.Add(1)
	}
}

// readEvents reads an event stream of serveSSE's to its end and calls
// got for each event with its index, the time the upstream wrote it (its
// data) and the time it was read. It returns the bytes and events read.
func readEvents(body io.Reader, got func(i int, sent, at time.Time)) (int64, int, error) {
	br := bufio.NewReader(body)
	var n int64
	events := 0
	for {
		line, err := br.ReadSlice('\n')
		n += int64(len(line))
		if v, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			at := time.Now()
			ns, perr := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			if perr != nil {
				return n, events, fmt.Errorf("event data %q: %w", v, perr)
			}
			got(events, time.Unix(0, ns), at)
			events++
		}
		if err == io.EOF {
			return n, events, nil
		}
		if err != nil {
			return n, events, err
		}
	}
}

// streamScenario runs a streaming scenario (after its check) into res.
func (r *run) streamScenario(ctx context.Context, s scenario, res *Result) *Result {
	conns := streamBigConns
	if s.stream == streamSSE {
		conns = streamSSEConns
	}
	res.Generator, res.Concurrency = "go-stream", conns
	fmt.Fprintf(r.out, "%-26s %s\n", s.name, s.desc)
	if r.opt.Warmup > 0 {
		generateStreams(ctx, s.url, s.stream, conns, r.opt.Warmup, new(streamStats))
	}
	before, err := ReadStats(ctx, r.rdb)
	if err != nil {
		res.Skipped = err.Error()
		return res
	}
	cpuBefore := r.cpuNow()
	stopProgress := r.progress(s.name, r.opt.Duration)
	start := time.Now()
	var st streamStats
	generateStreams(ctx, s.url, s.stream, conns, r.opt.Duration, &st)
	res.Seconds = time.Since(start).Seconds()
	for i, rps := range stopProgress() {
		res.Series = append(res.Series, Point{Second: i + 1, RPS: rps})
	}
	cpu := r.cpuNow().sub(cpuBefore)
	res.CPU = &cpu
	if after, err := ReadStats(ctx, r.rdb); err == nil {
		res.Redis = after.Sub(before)
	}
	if s.gateway {
		res.GatewayMemory = r.gatewayMemory()
	}
	res.Requests, res.Non2xx, res.Errors = st.requests.Load(), st.non2xx.Load(), st.errs.Load()
	res.RPS = float64(res.Requests) / res.Seconds
	res.P50ms, res.P90ms, res.P99ms = ms(st.ttfb.Quantile(.5)), ms(st.ttfb.Quantile(.9)), ms(st.ttfb.Quantile(.99))
	res.P999ms, res.MaxMs = ms(st.ttfb.Quantile(.999)), ms(st.ttfb.Max())
	res.LatencySource = "time to first byte (bytes) or first event (sse) of every stream"
	res.Stream = &StreamResult{
		Kind: s.stream, Bytes: st.bytes.Load(), MiBps: float64(st.bytes.Load()) / (1 << 20) / res.Seconds,
		TTFBp50ms: res.P50ms, TTFBp99ms: res.P99ms, Events: st.events.Load(),
	}
	if s.stream == streamSSE {
		res.Stream.EventP50ms, res.Stream.EventP99ms = ms(st.event.Quantile(.5)), ms(st.event.Quantile(.99))
	}
	if n := res.Requests; n > 0 {
		res.CmdsPerReq = float64(res.Redis.Commands) / float64(n)
		res.ScriptsPerReq = float64(res.Redis.Scripts) / float64(n)
		res.TripsPerReq = float64(res.Redis.RoundTrips) / float64(n)
	}
	return res
}
