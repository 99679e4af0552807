package cli

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/syncer/internal/api"
	"github.com/sluicegw/sluice/syncer/internal/nodes"
	"github.com/sluicegw/sluice/syncer/internal/publish"
)

const testToken = "test-admin-token"

// syncer is the real admin API, in process, over real Redis and NATS.
type syncer struct {
	URL   string
	Store *store.Store
	NATS  *testutil.NATS
}

func startSyncer(t *testing.T) *syncer {
	t.Helper()
	rds := testutil.StartRedis(t)
	nt := testutil.StartNATS(t)
	nc := nt.Conn(t)
	st := store.New(rds.Client(t), 0)
	reg := prometheus.NewRegistry()
	log := zerolog.Nop()
	pub, err := publish.New(nc, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	nr, err := nodes.New(nc, 10*time.Second, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := nr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nr.Shutdown(context.Background()) })
	srv, err := api.New(api.Options{Store: st, Announcer: pub, Nodes: nr, NATS: nc, AdminToken: testToken, Log: log, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &syncer{URL: hs.URL, Store: st, NATS: nt}
}

// result is the outcome of one sluicectl run.
type result struct {
	code           int
	stdout, stderr string
}

// sluicectl runs the CLI with args against addr (when not empty) with the
// test token and stdin.
func sluicectl(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	env := Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string {
			switch k {
			case "SLUICE_ADDR":
				return addr
			case "SLUICE_ADMIN_TOKEN":
				return testToken
			}
			return ""
		},
		Now: func() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := Run(ctx, args, env)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// must runs sluicectl and fails the test unless it exits 0.
func must(t *testing.T, addr, stdin string, args ...string) string {
	t.Helper()
	r := sluicectl(t, addr, stdin, args...)
	if r.code != 0 {
		t.Fatalf("sluicectl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}
