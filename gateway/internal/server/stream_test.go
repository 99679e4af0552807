package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/usage"
)

func streamingAPI(id, listen, target string, st *model.Streaming) *model.API {
	return &model.API{
		ID: id, ListenPath: listen, StripListenPath: true,
		Upstream:  model.Upstream{Targets: []string{target}},
		Auth:      model.Auth{Mode: model.AuthKeyless},
		Streaming: st,
	}
}

var sse = &model.Streaming{ContentTypes: []string{"text/event-stream"}}

// sseUpstream sends events "data: <i>" one at a time: the first at once,
// each next one only once the test says it received the one before (next).
// Through a gateway that held the response until its end, no event would
// ever reach the test.
func sseUpstream(t *testing.T, events int, next <-chan struct{}) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < events; i++ {
			if i > 0 {
				select {
				case <-next:
				case <-r.Context().Done():
					return
				case <-time.After(10 * time.Second):
					return
				}
			}
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// readEvent reads one "data:" line and the blank line after it.
func readEvent(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	if _, err := br.ReadString('\n'); err != nil {
		return "", err
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "data:")), nil
}

// TestStreamSSE: each event reaches the client before the upstream sends
// the next one, through one gateway and through two in a row.
func TestStreamSSE(t *testing.T) {
	t.Parallel()
	for _, hops := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d hops", hops), func(t *testing.T) {
			t.Parallel()
			const events = 5
			next := make(chan struct{})
			up := sseUpstream(t, events, next)
			c := newCluster(t)
			c.put(streamingAPI("sse", "/sse/", up.URL, sse))
			n := c.node()
			url := n.url + "/sse/events"
			if hops == 2 {
				c.put(streamingAPI("edge", "/edge/", n.url+"/sse", sse))
				url = c.node().url + "/edge/events"
			}
			resp, err := client.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			br := bufio.NewReader(resp.Body)
			for i := 0; i < events; i++ {
				got, err := readEvent(br)
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if got != fmt.Sprint(i) {
					t.Fatalf("event %d: got %q", i, got)
				}
				if i < events-1 {
					select {
					case next <- struct{}{}:
					case <-time.After(10 * time.Second):
						t.Fatalf("upstream never asked for event %d", i+1)
					}
				}
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
				t.Fatalf("after the last event: %q, %v", rest, err)
			}
			ev := waitEvent(t, n, "sse")
			want := int64(events * len("data: 0\n\n"))
			if ev.Status != 200 || ev.BytesOut != want || ev.Duration < ev.Latency || ev.Duration == 0 {
				t.Fatalf("event %+v, want status 200, out %d, dur_us >= lat_us", ev, want)
			}
		})
	}
}

// waitEvent waits for the usage event of API id on node n.
func waitEvent(t *testing.T, n *node, id string) usage.Event {
	t.Helper()
	var ev usage.Event
	testutil.WaitFor(t, 10*time.Second, func() error {
		for _, e := range n.events.all() {
			if e.API == id {
				ev = e
				return nil
			}
		}
		return errors.New("no usage event yet")
	})
	return ev
}

// TestStreamLargeDownload: a chunked download of 1 GiB (256 MiB with
// -short) goes through a gateway as it arrives; the process's heap
// (gateway, upstream and client together, measured in-process) grows by
// less than 100 MiB.
func TestStreamLargeDownload(t *testing.T) {
	t.Parallel()
	size := largeBody()
	chunk := []byte(strings.Repeat("sluice-", 64<<10/7))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		for sent := 0; sent < size; {
			n := min(len(chunk), size-sent)
			if _, err := w.Write(chunk[:n]); err != nil {
				return
			}
			sent += n
		}
	}))
	t.Cleanup(up.Close)
	c := newCluster(t)
	c.put(streamingAPI("dl", "/dl/", up.URL, &model.Streaming{Chunked: true}))
	n := c.node()

	base := heapInUse()
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if h := heapInUse(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Get(n.url + "/dl/file")
	if err != nil {
		close(stop)
		t.Fatal(err)
	}
	got, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	close(stop)
	<-sampled
	if err != nil || got != int64(size) || resp.StatusCode != 200 {
		t.Fatalf("status %d, read %d of %d bytes: %v", resp.StatusCode, got, size, err)
	}
	grew := int64(peak.Load()) - int64(base)
	t.Logf("heap in use: %d MiB before, peak %d MiB during a %d MiB download", base>>20, peak.Load()>>20, size>>20)
	if grew > 100<<20 {
		t.Fatalf("heap grew by %d MiB while streaming %d MiB", grew>>20, size>>20)
	}
	if ev := waitEvent(t, n, "dl"); ev.BytesOut != int64(size) || ev.Status != 200 {
		t.Fatalf("event %+v, want out %d", ev, size)
	}
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestStreamClientGone: a client that leaves mid-stream cancels the
// upstream request (its connection is closed) and is recorded as 499.
func TestStreamClientGone(t *testing.T) {
	t.Parallel()
	cancelled := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < 2000; i++ { // at most 20s
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				break
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				close(cancelled)
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(up.Close)
	c := newCluster(t)
	c.put(streamingAPI("sse", "/sse/", up.URL, sse))
	n := c.node()
	conn, err := net.Dial("tcp", n.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /sse/x HTTP/1.1\r\nHost: test\r\n\r\n")
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "data: ") {
			break
		}
	}
	conn.Close()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not cancelled")
	}
	if ev := waitEvent(t, n, "sse"); ev.Status != StatusClientClosed || ev.BytesOut == 0 {
		t.Fatalf("event %+v, want status 499 with the bytes sent", ev)
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if v := counterValue(t, n, "sluice_requests_total", "4xx"); v != 1 {
			return fmt.Errorf("sluice_requests_total 4xx = %v", v)
		}
		return nil
	})
}

// counterValue reads the counter name{status_class=class} of a node.
func counterValue(t *testing.T, n *node, name, class string) float64 {
	t.Helper()
	mfs, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		sum := 0.0
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "status_class" && l.GetValue() == class {
					sum += m.GetCounter().GetValue()
				}
			}
		}
		return sum
	}
	return 0
}

// TestStreamUpstreamStalls: an upstream that stops sending mid-stream is
// cut at the streaming idle timeout, far below its read timeout: the
// client's connection is closed before the body's end, and the exchange
// is recorded as 504.
func TestStreamUpstreamStalls(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: 0\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	}))
	t.Cleanup(up.Close)
	c := newCluster(t)
	a := streamingAPI("sse", "/sse/", up.URL, &model.Streaming{ContentTypes: []string{"text/event-stream"}, IdleTimeout: model.Duration(200 * time.Millisecond)})
	a.Upstream.ReadTimeout = model.Duration(time.Minute)
	c.put(a)
	n := c.node()
	resp, err := (&http.Client{Timeout: 8 * time.Second}).Get(n.url + "/sse/x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if ev, err := readEvent(br); err != nil || ev != "0" {
		t.Fatalf("first event %q: %v", ev, err)
	}
	if _, err := io.ReadAll(br); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("after the stall: %v, want the connection closed mid-body (unexpected EOF)", err)
	}
	if ev := waitEvent(t, n, "sse"); ev.Status != 504 {
		t.Fatalf("event %+v, want 504", ev)
	}
}

// TestStreamResponseBound: a streamed body is counted against the response
// body bound and cut past it; a response the settings do not select is read
// whole as before, bounded the same way.
func TestStreamResponseBound(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"ok":true}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		chunk := strings.Repeat("x", 64<<10)
		for i := 0; i < 64; i++ { // 4 MiB
			if _, err := fmt.Fprint(w, chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(up.Close)
	c := newCluster(t)
	c.maxResponse = 1 << 20
	c.put(streamingAPI("sse", "/sse/", up.URL, sse))
	n := c.node()
	if r := do(t, "GET", n.url+"/sse/small"); r.status != 200 || r.body != `{"ok":true}` || r.header.Get("Content-Length") != "11" {
		t.Fatalf("small response: %d %q %v", r.status, r.body, r.header)
	}
	resp, err := client.Get(n.url + "/sse/big")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil || got > 1<<20 {
		t.Fatalf("read %d bytes, err %v: want the stream cut at 1 MiB", got, err)
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		for _, e := range n.events.all() {
			if e.Path == "/sse/big" {
				if e.Status != 502 || e.BytesOut > 1<<20 {
					return fmt.Errorf("event %+v, want 502 within the bound", e)
				}
				return nil
			}
		}
		return errors.New("no event yet")
	})
}

// TestSlowBodyClient: a client sending its request body too slowly is cut
// by the server's read timeout (408, connection closed); the upstream
// never sees the request.
func TestSlowBodyClient(t *testing.T) {
	t.Parallel()
	var reached atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	t.Cleanup(up.Close)
	c := newCluster(t)
	c.put(streamingAPI("sse", "/sse/", up.URL, sse))
	n := c.node(func(o *Options) { o.ReadTimeout = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", n.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST /sse/upload HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nonly part of it")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Fatalf("status %d, close %v: want 408 and the connection closed", resp.StatusCode, resp.Close)
	}
	if reached.Load() != 0 {
		t.Fatal("the upstream saw a request whose body never arrived")
	}
}
