package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// sink is an upstream that reads request bodies as they arrive and counts
// them: the bytes received (live), the requests read whole and those whose
// body broke off (the gateway closed the connection before the end).
type sink struct {
	*httptest.Server
	received atomic.Int64
	complete atomic.Int32
	broken   atomic.Int32
	mu       sync.Mutex
	framing  []string // "cl=<n>" or "chunked" per complete request
}

func newSink(t *testing.T) *sink {
	s := &sink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64<<10)
		var n int64
		for {
			k, err := r.Body.Read(buf)
			n += int64(k)
			s.received.Add(int64(k))
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				s.broken.Add(1)
				return
			}
		}
		s.mu.Lock()
		if len(r.TransferEncoding) > 0 {
			s.framing = append(s.framing, strings.Join(r.TransferEncoding, ","))
		} else {
			s.framing = append(s.framing, "cl="+strconv.FormatInt(r.ContentLength, 10))
		}
		s.mu.Unlock()
		s.complete.Add(1)
		fmt.Fprint(w, n)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) framings() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.framing...)
}

// pattern is a request body of size bytes made on the fly. Once gateAt
// bytes are out, it waits (up to a deadline) for gate to say yes before
// sending more.
type pattern struct {
	left, sent, gateAt int64
	gate               func() bool
	chunk              []byte
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if p.gate != nil && p.sent >= p.gateAt {
		deadline := time.Now().Add(30 * time.Second)
		for !p.gate() {
			if time.Now().After(deadline) {
				return 0, errors.New("the upstream never received the first bytes while the client was still sending")
			}
			time.Sleep(5 * time.Millisecond) // polling a condition, not waiting for time
		}
		p.gate = nil
	}
	if p.chunk == nil {
		p.chunk = []byte(strings.Repeat("upload-", 64<<10/7))
	}
	n := copy(b, p.chunk)
	n = int(min(int64(n), p.left))
	p.left -= int64(n)
	p.sent += int64(n)
	return n, nil
}

// largeBody is the size of the large download and upload tests: 1 GiB,
// 256 MiB with -short.
func largeBody() int {
	if testing.Short() {
		return 256 << 20
	}
	return 1 << 30
}

// TestUploadLarge: a 1 GiB upload (256 MiB with -short) is forwarded as it arrives (the upstream
// receives its first MiBs while the client waits to send the rest), with
// the upstream seeing the client's Content-Length, and the process's heap
// (gateway, upstream and client together, measured in-process) grows by
// far less than 100 MiB. The usage event counts the bytes received.
func TestUploadLarge(t *testing.T) {
	t.Parallel()
	size := largeBody()
	up := newSink(t)
	c := newCluster(t)
	c.maxBody = 1<<31 - 1
	c.put(keyless("up", "/up/", up.URL))
	n := c.node()

	peak, stop := sampleHeap()
	body := &pattern{left: int64(size), gateAt: 8 << 20, gate: func() bool { return up.received.Load() >= 4<<20 }}
	req, err := http.NewRequest("POST", n.url+"/up/file", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(size)
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	grew, base := stop()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != strconv.Itoa(size) {
		t.Fatalf("status %d, upstream read %q bytes, want %d", resp.StatusCode, got, size)
	}
	t.Logf("heap in use: %d MiB before, peak %d MiB during a %d MiB upload", base>>20, peak()>>20, size>>20)
	if grew > 100<<20 {
		t.Fatalf("heap grew by %d MiB while streaming a %d MiB upload", grew>>20, size>>20)
	}
	if f := up.framings(); len(f) != 1 || f[0] != "cl="+strconv.Itoa(size) {
		t.Fatalf("upstream framing %v, want the client's Content-Length", f)
	}
	if ev := waitEvent(t, n, "up"); ev.BytesIn != int64(size) || ev.Status != 200 {
		t.Fatalf("event %+v, want in %d", ev, size)
	}
}

// sampleHeap samples the heap in use until stop is called; stop returns
// how much the peak grew over the start, and the start.
func sampleHeap() (peak func() uint64, stop func() (int64, uint64)) {
	base := heapInUse()
	var max atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if h := heapInUse(); h > max.Load() {
				max.Store(h)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return max.Load, func() (int64, uint64) {
		close(done)
		<-sampled
		return int64(max.Load()) - int64(base), base
	}
}

// rawConn dials the node and sends head (the request line and headers,
// "\r\n"-joined, the blank line added).
func rawConn(t *testing.T, n *node, head ...string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", n.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, strings.Join(head, "\r\n")+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readAnswer reads the gateway's answer on conn and checks that the
// connection is closed after it.
func readAnswer(t *testing.T, conn net.Conn) (status int, code string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if _, err := br.ReadByte(); err == nil {
		t.Fatalf("the connection stayed open after %d %s", resp.StatusCode, b)
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error.Code
}

// uploadNode is a node of a fresh cluster with one keyless API in front of
// a sink, its request bodies bounded at max (the gateway's at 8 times
// that), streamed past buffer.
func uploadNode(t *testing.T, max, buffer int, mut ...func(*Options)) (*node, *sink) {
	up := newSink(t)
	c := newCluster(t)
	c.maxBody = 8 * max
	a := keyless("up", "/up/", up.URL)
	a.MaxBodyBytes = int64(max)
	c.put(a)
	return c.node(append([]func(*Options){func(o *Options) { o.RequestBufferBytes = buffer }}, mut...)...), up
}

// chunk frames p as one chunk.
func chunk(p []byte) []byte {
	return append(append([]byte(strconv.FormatInt(int64(len(p)), 16)+"\r\n"), p...), "\r\n"...)
}

// TestUploadPastBound: a chunked upload is answered 413 as soon as its
// count passes the API's body bound (below the gateway's: the wire guard's
// count of chunk sizes does not see it), the connection closed; the upstream got at
// most the bound and its request broke off, never complete. A declared
// Content-Length above the bound is refused before the upstream hears of
// it, once the first bytes of its body arrived.
func TestUploadPastBound(t *testing.T) {
	t.Parallel()
	const max = 1 << 20
	t.Run("chunked", func(t *testing.T) {
		t.Parallel()
		n, up := uploadNode(t, max, 64<<10)
		conn := rawConn(t, n, "POST /up/x HTTP/1.1", "Host: t", "Transfer-Encoding: chunked")
		go func() {
			data := chunk([]byte(strings.Repeat("x", 32<<10)))
			for i := 0; i < 8*max/(32<<10); i++ { // 8 times the bound, unless cut
				if _, err := conn.Write(data); err != nil {
					return
				}
			}
		}()
		if status, code := readAnswer(t, conn); status != 413 || code != "body_too_large" {
			t.Fatalf("%d %s, want 413 body_too_large", status, code)
		}
		testutil.WaitFor(t, 10*time.Second, func() error {
			if up.broken.Load() != 1 {
				return errors.New("the upstream request did not break off")
			}
			return nil
		})
		if up.complete.Load() != 0 || up.received.Load() > max {
			t.Fatalf("upstream: %d complete requests, %d bytes received (bound %d)", up.complete.Load(), up.received.Load(), max)
		}
		if ev := waitEvent(t, n, "up"); ev.Status != 413 || ev.BytesIn <= max {
			t.Fatalf("event %+v, want 413 with the bytes received past the bound", ev)
		}
	})
	t.Run("content-length", func(t *testing.T) {
		t.Parallel()
		n, up := uploadNode(t, max, 64<<10)
		conn := rawConn(t, n, "POST /up/x HTTP/1.1", "Host: t", "Content-Length: "+strconv.Itoa(max+1))
		// fasthttp reads up to 8 KiB of a body with its headers: a client
		// sends its body without waiting (or asks with Expect: 100-continue)
		if _, err := conn.Write([]byte(strings.Repeat("c", 16<<10))); err != nil {
			t.Fatal(err)
		}
		if status, code := readAnswer(t, conn); status != 413 || code != "body_too_large" {
			t.Fatalf("%d %s, want 413 body_too_large", status, code)
		}
		if up.received.Load() != 0 || up.complete.Load() != 0 || up.broken.Load() != 0 {
			t.Fatal("the upstream heard of a request refused for its declared size")
		}
	})
}

// TestUploadClientGone: a client that disconnects mid-upload cancels the
// upstream request (its body breaks off); the exchange is recorded as 499
// with the bytes actually received.
func TestUploadClientGone(t *testing.T) {
	t.Parallel()
	n, up := uploadNode(t, 64<<20, 64<<10)
	conn := rawConn(t, n, "POST /up/x HTTP/1.1", "Host: t", "Content-Length: "+strconv.Itoa(64<<20))
	const sent = 4 << 20
	if _, err := conn.Write([]byte(strings.Repeat("y", sent))); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if up.received.Load() < 1<<20 {
			return errors.New("the upstream has not received the first MiB yet")
		}
		return nil
	})
	conn.Close()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if up.broken.Load() != 1 {
			return errors.New("the upstream request was not cancelled")
		}
		return nil
	})
	if up.complete.Load() != 0 {
		t.Fatal("the upstream read a complete request")
	}
	if ev := waitEvent(t, n, "up"); ev.Status != StatusClientClosed || ev.BytesIn != sent {
		t.Fatalf("event %+v, want 499 with in %d", ev, sent)
	}
}

// TestUploadSlowClient: a client that sends its streamed body slower than
// the minimum rate, or stops sending it, is cut off (408, connection
// closed) and the upstream sees its request break off, never complete. The
// trickle waits less than the read timeout between writes, so only the
// rate can cut it.
func TestUploadSlowClient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		every time.Duration // 0: stop after the first 16 KiB
	}{{"trickle", 50 * time.Millisecond}, {"stalls", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, up := uploadNode(t, 64<<20, 1<<10, func(o *Options) {
				o.ReadTimeout, o.MinBodyRate = 500*time.Millisecond, 64<<10
			})
			conn := rawConn(t, n, "POST /up/x HTTP/1.1", "Host: t", "Content-Length: "+strconv.Itoa(16<<20))
			// The first 16 KiB at once: the request is judged and forwarded.
			if _, err := conn.Write([]byte(strings.Repeat("z", 16<<10))); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			if tc.every > 0 {
				go func() {
					tick := time.NewTicker(tc.every)
					defer tick.Stop()
					for {
						select {
						case <-stop:
							return
						case <-tick.C:
						}
						if _, err := conn.Write([]byte(strings.Repeat("z", 64))); err != nil {
							return
						}
					}
				}()
			}
			if status, code := readAnswer(t, conn); status != 408 || code != "request_timeout" {
				t.Fatalf("%d %s, want 408 request_timeout", status, code)
			}
			testutil.WaitFor(t, 10*time.Second, func() error {
				if up.broken.Load() != 1 {
					return fmt.Errorf("upstream: %d bytes received, request not cancelled", up.received.Load())
				}
				return nil
			})
			if up.complete.Load() != 0 {
				t.Fatal("the upstream read a complete request")
			}
		})
	}
}

// TestUploadBrokenChunkFraming: a streamed chunked body whose framing
// breaks after the first 128 KiB (a chunk size line ending in a bare LF)
// is refused by the wire guard (400, closed); the upstream's request breaks
// off, never complete.
func TestUploadBrokenChunkFraming(t *testing.T) {
	t.Parallel()
	n, up := uploadNode(t, 1<<20, 64<<10)
	conn := rawConn(t, n, "POST /up/x HTTP/1.1", "Host: t", "Transfer-Encoding: chunked")
	data := chunk([]byte(strings.Repeat("w", 32<<10)))
	for i := 0; i < 4; i++ {
		if _, err := conn.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := io.WriteString(conn, "10\n0123456789abcdef\r\n0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if status, code := readAnswer(t, conn); status != 400 || code != "bad_request" {
		t.Fatalf("%d %s, want 400 bad_request", status, code)
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if up.broken.Load() != 1 {
			return errors.New("the upstream request did not break off")
		}
		return nil
	})
	if up.complete.Load() != 0 {
		t.Fatal("the upstream read a complete request from broken framing")
	}
}

// TestUploadFraming: what the upstream receives for each body size and
// framing: small bodies (chunked or not) read whole and sent with a
// Content-Length; a large Content-Length body streamed with it; a chunked
// body past the buffer streamed chunked. Each arrives whole.
func TestUploadFraming(t *testing.T) {
	t.Parallel()
	n, up := uploadNode(t, 1<<20, 64<<10)
	small, large := strings.Repeat("s", 1000), strings.Repeat("l", 200<<10)
	for i, tc := range []struct {
		name, body, want string
		chunked          bool
	}{
		{"small", small, "cl=1000", false},
		{"small chunked", small, "cl=1000", true},
		{"large", large, "cl=" + strconv.Itoa(len(large)), false},
		{"large chunked", large, "chunked", true},
	} {
		var r io.Reader = strings.NewReader(tc.body)
		if tc.chunked {
			r = io.MultiReader(r) // unknown length: net/http sends it chunked
		}
		resp, err := client.Post(n.url+"/up/x", "application/octet-stream", r)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != strconv.Itoa(len(tc.body)) {
			t.Fatalf("%s: %d, upstream read %s bytes", tc.name, resp.StatusCode, got)
		}
		if f := up.framings(); len(f) != i+1 || f[i] != tc.want {
			t.Fatalf("%s: upstream framings %v, want %s last", tc.name, f, tc.want)
		}
	}
}

// TestUploadJudgedFirst: a large upload refused by authentication or by a
// rate limit is answered before any byte of it reaches the upstream.
func TestUploadJudgedFirst(t *testing.T) {
	t.Parallel()
	up := newSink(t)
	c := newCluster(t)
	c.maxBody = 64 << 20
	keyed := keyless("keyed", "/keyed/", up.URL)
	keyed.Auth = model.Auth{Mode: model.AuthAPIKey}
	limited := keyless("limited", "/limited/", up.URL)
	limited.RateLimit = &model.Limit{Rate: 1, Per: model.Duration(time.Hour)}
	c.put(keyed, limited)
	n := c.node(func(o *Options) { o.RequestBufferBytes = 64 << 10 })
	post := func(path string) int {
		resp, err := client.Post(n.url+path, "application/octet-stream", &pattern{left: 8 << 20})
		if err != nil {
			return 0 // the gateway may close while the client still sends
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := post("/keyed/x"); s != 401 && s != 0 {
		t.Fatalf("upload without a key: %d, want 401", s)
	}
	if up.received.Load() != 0 {
		t.Fatalf("the upstream received %d bytes of an upload without a key", up.received.Load())
	}
	if s := post("/limited/x"); s != 200 {
		t.Fatalf("first upload: %d, want 200", s)
	}
	before := up.received.Load()
	if s := post("/limited/x"); s != 429 && s != 0 {
		t.Fatalf("second upload: %d, want 429", s)
	}
	if up.received.Load() != before || up.complete.Load() != 1 || up.broken.Load() != 0 {
		t.Fatalf("upstream: %d bytes after the refused uploads (%d before), %d complete, %d broken",
			up.received.Load(), before, up.complete.Load(), up.broken.Load())
	}
}
