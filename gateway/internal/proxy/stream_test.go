package proxy

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/pkg/model"
)

// TestDoStream: the headers come back before the body is sent, the body
// is read from the stream, and the connection it comes from is reachable
// to bound each read.
func TestDoStream(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		_, _ = io.WriteString(w, "data: late\n\n")
	})
	u, err := New(model.Upstream{Targets: []string{up.URL + "/base"}}, Options{ReadTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	req := newReq("http://gw/x")
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := u.DoStream(req, resp, mustPath(t, "/x"), 0); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 200 || string(resp.Header.ContentType()) != "text/event-stream" {
		t.Fatalf("status %d, content type %q", resp.StatusCode(), resp.Header.ContentType())
	}
	if StreamConn(resp) == nil {
		t.Fatal("no connection behind a streamed response")
	}
	close(release) // the body is sent only now: DoStream did not wait for it
	body, err := io.ReadAll(resp.BodyStream())
	if err != nil || string(body) != "data: late\n\n" {
		t.Fatalf("body %q: %v", body, err)
	}
	if err := resp.CloseBodyStream(); err != nil {
		t.Fatal(err)
	}
	var plain fasthttp.Response
	if StreamConn(&plain) != nil {
		t.Fatal("a response DoStream did not fill has a stream connection")
	}
}

// TestUpgradeRefusedByUpstream: an upstream answering the handshake with
// anything but 101 gives its whole answer and no connection.
func TestUpgradeRefusedByUpstream(t *testing.T) {
	t.Parallel()
	saw := make(chan string, 1)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		saw <- r.Header.Get("Upgrade") + "|" + r.URL.Path
		http.Error(w, "no sockets here", http.StatusForbidden)
	})
	u, err := New(model.Upstream{Targets: []string{up.URL + "/base"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	req := newReq("http://gw/chat")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	var resp fasthttp.Response
	conn, br, err := u.Upgrade(req, &resp, mustPath(t, "/chat"), 0, time.Second)
	if err != nil || conn != nil || br != nil {
		t.Fatalf("conn %v, reader %v, err %v", conn, br, err)
	}
	if resp.StatusCode() != 403 || string(resp.Body()) != "no sockets here\n" {
		t.Fatalf("answer %d %q", resp.StatusCode(), resp.Body())
	}
	if got := <-saw; got != "websocket|/base/chat" {
		t.Fatalf("upstream saw %q", got)
	}
}
