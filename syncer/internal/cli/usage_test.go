package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/usage"
)

// syncBuffer is a bytes.Buffer safe to read while the CLI writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func batch(api string, n, seq int) *nats.Msg { return batchIn(bus.Names{}, api, n, seq) }

// batchIn is batch on the usage subject of names' namespace.
func batchIn(names bus.Names, api string, n, seq int) *nats.Msg {
	var data []byte
	for i := 0; i < n; i++ {
		e := usage.Event{ID: fmt.Sprintf("n1-%d-%d", seq, i), Time: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano(),
			Node: "n1", API: api, KeyHash: strings.Repeat("ab", 32), Method: "GET", Path: "/" + api + "/items",
			Status: 200, Latency: 1500, BytesIn: 0, BytesOut: 42}
		if i == 1 {
			e.Status, e.Limited = 429, "rate"
		}
		data = usage.AppendJSON(data, &e)
	}
	m := nats.NewMsg(names.UsageSubject(api))
	m.Data = data
	m.Header.Set(usage.HeaderVersion, usage.Version)
	m.Header.Set(usage.HeaderMsgID, fmt.Sprintf("n1-boot-%d", seq))
	return m
}

func TestUsageTail(t *testing.T) {
	t.Parallel()
	nt := testutil.StartNATS(t)
	pub := nt.Conn(t)
	tests := []struct {
		name string
		args []string
		want []string
		not  string
	}{
		{"one API, lines", []string{"--api", "orders", "--count", "2"},
			[]string{"03:04:05.000 orders       GET    /orders/items                  200    1.5ms key=abababababab in=0 out=42 node=n1\n",
				"429    1.5ms key=abababababab in=0 out=42 node=n1 limited=rate\n"}, "catalog"},
		{"every API, json", []string{"--count", "4", "-o", "json"},
			[]string{`"api":"orders"`, `"api":"catalog"`, `"limited":"rate"`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut syncBuffer
			env := Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string {
				if k == "SLUICE_NATS_URL" {
					return nt.URL()
				}
				return ""
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			done := make(chan int, 1)
			go func() { done <- Run(ctx, append([]string{"usage", "tail"}, tt.args...), env) }()
			// Core NATS drops what is published before the subscription:
			// wait for it, then publish a batch of another API and of ours.
			testutil.WaitFor(t, 10*time.Second, func() error {
				if !strings.Contains(errOut.String(), "listening on") {
					return fmt.Errorf("not subscribed yet: %q", errOut.String())
				}
				return nil
			})
			for i, api := range []string{"catalog", "orders"} {
				if err := pub.PublishMsg(batch(api, 2, i)); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case code := <-done:
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errOut.String())
				}
			case <-ctx.Done():
				t.Fatalf("usage tail did not stop after --count events; output:\n%s", out.String())
			}
			got := out.String()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			if tt.not != "" && strings.Contains(got, tt.not) {
				t.Errorf("output has %q:\n%s", tt.not, got)
			}
		})
	}
}

// usage tail follows one namespace: --namespace, else SLUICE_NATS_NAMESPACE,
// else the default; events of another namespace are not shown.
func TestUsageTailNamespace(t *testing.T) {
	t.Parallel()
	nt := testutil.StartNATS(t)
	pub := nt.Conn(t)
	tests := []struct {
		name, flag, env string
		want            string // on stderr for a refused namespace
	}{
		{name: "flag", flag: "staging"},
		{name: "variable", env: "staging"},
		{name: "flag over variable", flag: "staging", env: "production"},
		{name: "bad flag", flag: "a.b", want: "--namespace"},
		{name: "bad variable", env: "Staging", want: "nats.namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut syncBuffer
			env := Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string {
				return map[string]string{"SLUICE_NATS_URL": nt.URL(), "SLUICE_NATS_NAMESPACE": tt.env}[k]
			}}
			args := []string{"usage", "tail", "--count", "2"}
			if tt.flag != "" {
				args = append(args, "--namespace", tt.flag)
			}
			if tt.want != "" {
				if code := Run(context.Background(), args, env); code != ExitUsage || !strings.Contains(errOut.String(), tt.want) {
					t.Fatalf("exit %d, want %d naming %s: %s", code, ExitUsage, tt.want, errOut.String())
				}
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			done := make(chan int, 1)
			go func() { done <- Run(ctx, args, env) }()
			testutil.WaitFor(t, 10*time.Second, func() error {
				if !strings.Contains(errOut.String(), "listening on staging.usage.>") {
					return fmt.Errorf("not subscribed yet: %q", errOut.String())
				}
				return nil
			})
			// One connection's messages arrive in order: a tail that saw
			// the default namespace would count its batch first.
			for _, m := range []*nats.Msg{batch("orders", 2, 0), batchIn(bus.NewNames("production"), "orders", 2, 1), batchIn(bus.NewNames("staging"), "catalog", 2, 2)} {
				if err := pub.PublishMsg(m); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case code := <-done:
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errOut.String())
				}
			case <-ctx.Done():
				t.Fatalf("usage tail did not stop after --count events; output:\n%s", out.String())
			}
			if got := out.String(); !strings.Contains(got, "catalog") || strings.Contains(got, "orders") {
				t.Errorf("output, want staging's catalog events only:\n%s", got)
			}
		})
	}
}

// The analytics worker is another module; this stands in for its query
// API with answers in its documented shape.
func TestUsageTable(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.String())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/usage":
			fmt.Fprint(w, `{"api":"orders","step":"1m","series":[
				{"t":"2030-01-02T03:04:00Z","requests":10,"status":{"2xx":8,"3xx":0,"4xx":2,"5xx":0},"errors":0,"limited":2,"bytes_in":0,"bytes_out":420,"units":1500,"p50_ms":1.5,"p95_ms":3,"p99_ms":4.25},
				{"t":"2030-01-02T03:05:00Z","requests":0,"status":{"2xx":0,"3xx":0,"4xx":0,"5xx":0},"errors":0,"limited":0,"bytes_in":0,"bytes_out":0,"p50_ms":0,"p95_ms":0,"p99_ms":0}],
				"totals":{"t":"2030-01-02T03:04:00Z","requests":10,"status":{"2xx":8,"3xx":0,"4xx":2,"5xx":0},"errors":0,"limited":2,"bytes_in":0,"bytes_out":420,"units":1500,"p50_ms":1.5,"p95_ms":3,"p99_ms":4.25}}`)
		case "/v1/usage/top":
			fmt.Fprint(w, `{"by":"key","items":[{"name":"abc","api":"orders","requests":9,"status":{"2xx":8,"4xx":1},"errors":0,"limited":1,"units":1200,"p50_ms":1.5},{"name":"def","requests":1,"status":{"2xx":1}}]}`)
		default:
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":{"code":"invalid_request","message":"step: \"5m\" is not 1m, 1h or 1d"}}`)
		}
	}))
	t.Cleanup(srv.Close)
	r := sluicectl(t, "", "", "usage", "--analytics", srv.URL, "--api", "orders", "--from", "-2m", "--to", "now")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want := "TIME                  REQUESTS  2XX  3XX  4XX  5XX  LIMITED  BYTES IN  BYTES OUT  UNITS  P50 MS  P95 MS  P99 MS\n" +
		"2030-01-02T03:04:00Z  10        8    0    2    0    2        0         420        1500   1.5     3       4.25\n" +
		"2030-01-02T03:05:00Z  0         0    0    0    0    0        0         0          0      0       0       0\n" +
		"TOTAL                 10        8    0    2    0    2        0         420        1500   1.5     3       4.25\n" +
		"\ntop by endpoint:\n" +
		"KEY  API     REQUESTS  2XX  3XX  4XX  5XX  LIMITED  BYTES IN  BYTES OUT  UNITS  P50 MS  P95 MS  P99 MS\n" +
		"abc  orders  9         8    0    1    0    1        0         0          1200   1.5     0       0\n"
	if r.stdout != want {
		t.Errorf("usage:\n%s\nwant:\n%s", r.stdout, want)
	}
	mu.Lock()
	got := strings.Join(queries, " ")
	mu.Unlock()
	for _, w := range []string{"/v1/usage?api=orders&from=-2m&step=1m&to=now", "/v1/usage/top?by=endpoint&from=-2m&limit=1000&to=now"} {
		if !strings.Contains(got, w) {
			t.Errorf("queries %q lack %q", got, w)
		}
	}
	// --top key cannot be narrowed to one API: refused before any request.
	if r := sluicectl(t, "", "", "usage", "--analytics", srv.URL, "--api", "orders", "--top", "key"); r.code != ExitUsage || !strings.Contains(r.stderr, "cannot be narrowed") {
		t.Errorf("--top key --api: exit %d, %s", r.code, r.stderr)
	}
	// Without filters the top keys are asked for as they are.
	if r := sluicectl(t, "", "", "usage", "--analytics", srv.URL); r.code != 0 || !strings.Contains(r.stdout, "def  -") {
		t.Errorf("usage without filters: exit %d\n%s", r.code, r.stdout)
	}
	// An error answer is printed with its code, exit 1.
	r = sluicectl(t, "", "", "usage", "--analytics", srv.URL+"/bad")
	if r.code != ExitError || !strings.Contains(r.stderr, "error: invalid_request (HTTP 400)") {
		t.Errorf("error answer: exit %d, %s", r.code, r.stderr)
	}
}

// usage tail reads the services' SLUICE_NATS_* credentials; a refused
// credential fails with the field named.
func TestUsageTailCredentials(t *testing.T) {
	t.Parallel()
	nt := testutil.StartNATSWith(t, func(o *server.Options) { o.Authorization = "tail-token-0123" })
	tests := []struct {
		name, token string
		want        string // on stderr
		code        int
	}{
		{"right token", "tail-token-0123", "listening on", 0},
		{"wrong token", "other", "nats.token", 1},
		{"no token", "", "nats.user", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut syncBuffer
			env := Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string {
				return map[string]string{"SLUICE_NATS_URL": nt.URL(), "SLUICE_NATS_TOKEN": tt.token}[k]
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			done := make(chan int, 1)
			go func() { done <- Run(ctx, []string{"usage", "tail"}, env) }()
			testutil.WaitFor(t, 10*time.Second, func() error {
				if !strings.Contains(errOut.String(), tt.want) {
					return fmt.Errorf("stderr %q", errOut.String())
				}
				return nil
			})
			cancel()
			if code := <-done; (code == 0) != (tt.code == 0) {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, errOut.String())
			}
		})
	}
}
