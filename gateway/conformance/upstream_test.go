package conformance

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// received is one request as the upstream read it off the wire.
type received struct {
	raw     []byte // the exact bytes: head and body as framed
	method  string
	target  string
	proto   string
	headers [][2]string // in order, names as sent
	body    []byte      // decoded (chunked framing removed)
	chunked bool
	err     error // the request could not be read as one HTTP/1.1 message
}

// header returns every value of the named header.
func (r *received) header(name string) []string {
	var v []string
	for _, h := range r.headers {
		if strings.EqualFold(h[0], name) {
			v = append(v, h[1])
		}
	}
	return v
}

// recorder is the recording upstream: a raw TCP listener that reads
// requests strictly (CRLF lines, one framing), keeps each one with its
// exact bytes under the tag of its path (/t/<tag>/...), and answers 200.
type recorder struct {
	ln  net.Listener
	mu  sync.Mutex
	by  map[string][]*received
	seq []*received
	wg  sync.WaitGroup
}

func startRecorder(t testing.TB) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln, by: map[string][]*received{}}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(func() { _ = ln.Close(); r.wg.Wait() })
	return r
}

func (r *recorder) addr() string { return r.ln.Addr().String() }

func (r *recorder) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go r.serve(c)
	}
}

func (r *recorder) serve(c net.Conn) {
	defer r.wg.Done()
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req := readRequest(br)
		if req == nil {
			return
		}
		r.mu.Lock()
		tag := tagOf(req.target)
		r.by[tag] = append(r.by[tag], req)
		r.seq = append(r.seq, req)
		r.mu.Unlock()
		if req.err != nil {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\n"+upstreamMark+": 1\r\nContent-Length: 0\r\n\r\n"); err != nil {
			return
		}
	}
}

// upstreamMark is the header of every upstream answer (empty: a HEAD
// answer reads the same as any other).
const upstreamMark = "X-Recorded"

// received returns every request received so far, in arrival order.
func (r *recorder) received() []*received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*received(nil), r.seq...)
}

// requests returns what the upstream received for tag.
func (r *recorder) requests(tag string) []*received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*received(nil), r.by[tag]...)
}

// tagOf is the second segment of /t/<tag>/...
func tagOf(target string) string {
	rest, ok := strings.CutPrefix(target, "/t/")
	if !ok {
		return ""
	}
	tag, _, _ := strings.Cut(rest, "/")
	return tag
}

// readRequest reads one request; nil at a clean end of the connection.
func readRequest(br *bufio.Reader) *received {
	var raw bytes.Buffer
	line, err := readLine(br, &raw)
	if err != nil {
		if errors.Is(err, io.EOF) && raw.Len() == 0 {
			return nil
		}
		return &received{raw: raw.Bytes(), err: err}
	}
	req := &received{}
	parts := strings.Split(line, " ")
	if len(parts) != 3 {
		return &received{raw: raw.Bytes(), err: fmt.Errorf("request line %q", line)}
	}
	req.method, req.target, req.proto = parts[0], parts[1], parts[2]
	for {
		line, err := readLine(br, &raw)
		if err != nil {
			req.raw, req.err = raw.Bytes(), err
			return req
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			req.raw, req.err = raw.Bytes(), fmt.Errorf("header line %q", line)
			return req
		}
		req.headers = append(req.headers, [2]string{name, strings.Trim(value, " \t")})
	}
	req.err = readBody(br, &raw, req)
	req.raw = raw.Bytes()
	return req
}

func readBody(br *bufio.Reader, raw *bytes.Buffer, req *received) error {
	te, cl := req.header("Transfer-Encoding"), req.header("Content-Length")
	switch {
	case len(te) > 0 && len(cl) > 0:
		return errors.New("both Transfer-Encoding and Content-Length")
	case len(te) == 1 && strings.EqualFold(te[0], "chunked"):
		req.chunked = true
		return readChunked(br, raw, req)
	case len(te) > 0:
		return fmt.Errorf("transfer-encoding %q", te)
	case len(cl) > 1:
		return fmt.Errorf("content-length %q", cl)
	case len(cl) == 1:
		n, err := strconv.Atoi(cl[0])
		if err != nil || n > 1<<20 || strings.Trim(cl[0], "0123456789") != "" {
			return fmt.Errorf("content-length %q", cl[0])
		}
		req.body = make([]byte, n)
		if _, err := io.ReadFull(br, req.body); err != nil {
			return err
		}
		raw.Write(req.body)
	}
	return nil
}

// readChunked reads a chunked body: chunk sizes in hex digits only,
// extensions (at most maxChunkExt bytes in all, as the gateway allows)
// dropped, trailer lines skipped.
func readChunked(br *bufio.Reader, raw *bytes.Buffer, req *received) error {
	ext := 0
	for {
		line, err := readLine(br, raw)
		if err != nil {
			return err
		}
		size, e, _ := strings.Cut(line, ";")
		if ext += len(line) - len(size); ext > maxChunkExt {
			return errors.New("chunk extensions too long")
		}
		if len(size) == 0 || len(size) > 15 || strings.Trim(size, "0123456789abcdefABCDEF") != "" {
			return fmt.Errorf("chunk size %q (extension %q)", size, e)
		}
		n, _ := strconv.ParseInt(size, 16, 64)
		if n == 0 {
			return readTrailer(br, raw)
		}
		if n > 1<<20 {
			return fmt.Errorf("chunk size %d", n)
		}
		chunk := make([]byte, n+2)
		if _, err := io.ReadFull(br, chunk); err != nil {
			return err
		}
		raw.Write(chunk)
		if !bytes.HasSuffix(chunk, []byte("\r\n")) {
			return errors.New("chunk not followed by CRLF")
		}
		req.body = append(req.body, chunk[:n]...)
	}
}

// maxChunkExt is the gateway's bound on chunk extension bytes per message.
const maxChunkExt = 4096

func readTrailer(br *bufio.Reader, raw *bytes.Buffer) error {
	for {
		line, err := readLine(br, raw)
		if err != nil || line == "" {
			return err
		}
	}
}

// readLine reads a line that must end in CRLF, holding no other CR or LF.
func readLine(br *bufio.Reader, raw *bytes.Buffer) (string, error) {
	s, err := br.ReadString('\n')
	raw.WriteString(s)
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(s, "\r\n") || strings.Count(s, "\r") != 1 {
		return "", fmt.Errorf("line %q does not end in CRLF alone", s)
	}
	return strings.TrimSuffix(s, "\r\n"), nil
}
