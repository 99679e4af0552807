package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

func TestSeedIsIdempotent(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	ctx := context.Background()
	st := store.New(r.Client(t), 0)
	args := []string{"--redis", r.Addr(), "--upstream", "http://127.0.0.1:1"}

	var out, errb bytes.Buffer
	if code := run(ctx, append([]string{"seed"}, args...), &out, &errb); code != 0 {
		t.Fatalf("seed exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), DemoKey) {
		t.Errorf("first seed did not print the demo key:\n%s", out.String())
	}
	v1, err := st.Version(ctx)
	if err != nil || v1 != 3 {
		t.Fatalf("version after first seed = %d, %v; want 3", v1, err)
	}
	k, err := st.KeyByHash(ctx, model.HashKey([]byte(DemoKey)))
	if err != nil || len(k.Policies) != 1 || k.Policies[0] != "demo-basic" {
		t.Fatalf("demo key = %+v, %v", k, err)
	}

	out.Reset()
	if code := run(ctx, append([]string{"seed"}, args...), &out, &errb); code != 0 {
		t.Fatalf("second seed exit %d: %s", code, errb.String())
	}
	if v2, _ := st.Version(ctx); v2 != v1 {
		t.Errorf("second seed bumped the version %d -> %d", v1, v2)
	}
	if strings.Contains(out.String(), DemoKey) {
		t.Errorf("second seed printed the key again")
	}
}

func TestUpstreamHandler(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, uri string
		status    int
		slow      int64
	}{
		{"echo", "http://x/users/1?a=b", 200, 0},
		{"status", "http://x/demo/status/418", 418, 0},
		{"bad status", "http://x/status/abc", 400, 0},
		{"slow", "http://x/slow?ms=5", 200, 5},
		{"slow negative", "http://x/slow?ms=-5", 200, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ctx fasthttp.RequestCtx
			ctx.Request.SetRequestURI(tc.uri)
			ctx.Request.Header.Set("X-Test", "1")
			upstreamHandler(&ctx)
			if got := ctx.Response.StatusCode(); got != tc.status {
				t.Fatalf("status = %d, want %d", got, tc.status)
			}
			if tc.status == 400 {
				return
			}
			var e echo
			if err := json.Unmarshal(ctx.Response.Body(), &e); err != nil {
				t.Fatalf("body: %v", err)
			}
			if e.Method != "GET" || e.SlowMS != tc.slow || e.Headers["X-Test"][0] != "1" {
				t.Errorf("echo = %+v", e)
			}
		})
	}
}

func TestWait(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: upstreamHandler}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	addr := l.Addr().String()
	closed := testutil.FreePort(t)

	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"tcp", []string{addr}, 0},
		{"tcp scheme", []string{"tcp://" + addr}, 0},
		{"http 2xx", []string{"http://" + addr + "/ok"}, 0},
		{"http 5xx", []string{"http://" + addr + "/status/503"}, 1},
		{"closed port", []string{"127.0.0.1:" + itoa(closed)}, 1},
		{"no address", nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			args := append([]string{"wait", "--timeout", "300ms", "--quiet"}, tc.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if code := run(ctx, args, &out, &errb); code != tc.code {
				t.Errorf("exit %d, want %d: %s", code, tc.code, errb.String())
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"nope"}, &out, &errb); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
}

func TestNATSServesJetStream(t *testing.T) {
	t.Parallel()
	port := testutil.FreePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	var out, errb bytes.Buffer
	go func() {
		exited <- run(ctx, []string{"nats", "--port", strconv.Itoa(port), "--store", t.TempDir()}, &out, &errb)
	}()
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	testutil.WaitFor(t, 10*time.Second, func() error {
		nc, err := nats.Connect(url)
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		_, err = js.AccountInfo(context.Background())
		return err
	})
	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit %d: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nats did not stop after cancel")
	}
}
