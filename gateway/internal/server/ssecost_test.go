package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

const openAIStream = "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n" +
	": keep-alive comment\n\n" +
	"event: message\nid: 2\ndata: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n" +
	"data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":33,\"total_tokens\":42}}\n\n" +
	"data: [DONE]\n\n"

func TestSSECost(t *testing.T) {
	t.Parallel()
	huge := "data: {\"usage\":{\"total_tokens\":7},\"pad\":\"" + strings.Repeat("p", maxEventBytes) + "\"}\n\n"
	for _, tc := range []struct {
		name, stream string
		want         int64
		ok           bool
	}{
		{"openai stream", openAIStream, 42, true},
		{"crlf endings", strings.ReplaceAll(openAIStream, "\n", "\r\n"), 42, true},
		{"cr endings", strings.ReplaceAll(openAIStream, "\n", "\r"), 42, true},
		{"no space after colon", "data:{\"usage\":{\"total_tokens\":5}}\n\n", 5, true},
		{"json over two data lines", "data: {\"usage\":\ndata: {\"total_tokens\":6}}\n\n", 6, true},
		{"the last usage wins", "data: {\"usage\":{\"total_tokens\":1}}\n\ndata: {\"usage\":{\"total_tokens\":2}}\n\n", 2, true},
		{"an event without its blank line is not read", "data: {\"usage\":{\"total_tokens\":3}}\n", 0, false},
		{"no usage", "data: {\"choices\":[]}\n\ndata: [DONE]\n\n", 0, false},
		{"usage not a number", "data: {\"usage\":{\"total_tokens\":\"9\"}}\n\n", 0, false},
		{"other field", "event: {\"usage\":{\"total_tokens\":4}}\n\n", 0, false},
		{"an event past the bound is skipped", "data: {\"usage\":{\"total_tokens\":8}}\n\n" + huge, 8, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, step := range []int{len(tc.stream), 1, 7, 4096} {
				c := newSSECost("usage.total_tokens")
				for s := tc.stream; len(s) > 0; {
					n := min(step, len(s))
					c.feed([]byte(s[:n]))
					s = s[n:]
				}
				if got, ok := c.result(); got != tc.want || ok != tc.ok {
					t.Fatalf("fed %d bytes at a time: %d %v, want %d %v", step, got, ok, tc.want, tc.ok)
				}
				if cap(c.line) > 2*maxEventBytes || cap(c.data) > 2*maxEventBytes {
					t.Fatalf("buffers grew past the bound: line %d, data %d", cap(c.line), cap(c.data))
				}
			}
		})
	}
}

// refSSECost is the cost of a whole stream read the plain way: line ends
// normalised, events split at blank lines, the data lines of each joined.
func refSSECost(stream, path string) (int64, bool) {
	stream = strings.ReplaceAll(stream, "\r\n", "\n")
	stream = strings.ReplaceAll(stream, "\r", "\n")
	lines := strings.Split(stream, "\n")
	lines = lines[:len(lines)-1] // the last has no line end: not a line yet
	var data []string
	var cost int64
	var found bool
	for _, l := range lines {
		switch {
		case l == "":
			d := strings.Join(data, "\n")
			data = nil
			if strings.HasPrefix(d, "{") {
				if n, ok := jsonCost([]byte(d), path); ok {
					cost, found = n, true
				}
			}
		case l == "data":
			data = append(data, "")
		case strings.HasPrefix(l, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(l, "data:"), " "))
		}
	}
	return cost, found
}

// FuzzSSECost: the scanner never panics, reads the same cost however the
// stream is split into reads, and the same cost as the plain reading of
// the whole stream.
func FuzzSSECost(f *testing.F) {
	f.Add(openAIStream, uint8(1))
	f.Add(strings.ReplaceAll(openAIStream, "\n", "\r\n"), uint8(2))
	f.Add("data: {\"usage\":\r\ndata: {\"total_tokens\":6}}\r\r", uint8(3))
	f.Add("data\n\ndata:\n\n\r\n\r", uint8(5))
	f.Fuzz(func(t *testing.T, stream string, step uint8) {
		if len(stream) > maxEventBytes/2 {
			return // the bound is tested apart
		}
		whole := newSSECost("usage.total_tokens")
		whole.feed([]byte(stream))
		split := newSSECost("usage.total_tokens")
		s := stream
		for n := int(step) + 1; len(s) > 0; s = s[min(n, len(s)):] {
			split.feed([]byte(s[:min(n, len(s))]))
		}
		w, wok := whole.result()
		p, pok := split.result()
		if w != p || wok != pok {
			t.Fatalf("whole %d %v, split every %d bytes %d %v", w, wok, int(step)+1, p, pok)
		}
		if r, rok := refSSECost(stream, "usage.total_tokens"); r != w || rok != wok {
			t.Fatalf("scanner %d %v, plain reading %d %v", w, wok, r, rok)
		}
		if wok && w < 0 {
			t.Fatalf("negative cost %d", w)
		}
	})
}

// TestCostFromStream: a limit counting the tokens an OpenAI-style stream
// reports in its last event settles each streamed answer at that count.
// With the reservation kept instead (50 of 100 per request), the third
// stream would be refused; settled at 10, all five go through, and each
// usage event carries 10 units.
func TestCostFromStream(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		for _, ev := range []string{
			`{"choices":[{"delta":{"content":"a"}}]}`,
			`{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":6,"total_tokens":10}}`,
			`[DONE]`,
		} {
			fmt.Fprintf(w, "data: %s\n\n", ev)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(up.Close)
	c := newExactCluster(t)
	a := streamingAPI("llm", "/llm/", up.URL, sse)
	a.OnStoreError = model.StoreErrorClosed
	a.RateLimit = &model.Limit{Rate: 100, Per: model.Duration(time.Hour), Units: &model.Units{
		From: model.UnitsResponseJSON, Path: "usage.total_tokens", Reserve: 50}}
	c.put(a)
	n := c.node()
	for i := 0; i < 5; i++ {
		r := do(t, "POST", n.url+"/llm/v1/chat/completions")
		if r.status != 200 || !strings.Contains(r.body, `"total_tokens":10`) {
			t.Fatalf("stream %d: %d %q", i, r.status, r.body)
		}
		// the stream records (and settles) as it ends, after the client
		// has read it: wait for it before the next one
		waitEvents(t, n, "llm", i+1)
	}
	for _, e := range n.events.all() {
		if e.Units != 10 || e.Status != 200 {
			t.Fatalf("event %+v, want 10 units", e)
		}
	}
}

// waitEvents waits for count usage events of API id on node n.
func waitEvents(t *testing.T, n *node, id string, count int) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() error {
		got := 0
		for _, e := range n.events.all() {
			if e.API == id {
				got++
			}
		}
		if got < count {
			return fmt.Errorf("%d usage events of %s, want %d", got, id, count)
		}
		return nil
	})
}
