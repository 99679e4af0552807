package cli

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/syncer/internal/apitest"
	"github.com/sluicegw/sluice/syncer/internal/nodes"
)

const testToken = "test-admin-token"

// syncer is the real admin API, in process, over real Redis and NATS.
type syncer struct {
	URL   string
	Store *store.Store
	NATS  *testutil.NATS
	Nodes *nodes.Registry
	API   http.Handler
}

func startSyncer(t *testing.T) *syncer {
	t.Helper()
	nt := testutil.StartNATS(t)
	s := apitest.Start(t, testutil.StartRedis(t), nt, testToken, 10*time.Second)
	return &syncer{URL: s.URL, Store: s.Store, NATS: nt, Nodes: s.Nodes, API: s.API.Handler()}
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
	return runCLI(t, stdin, map[string]string{"SLUICE_ADDR": addr, "SLUICE_ADMIN_TOKEN": testToken}, args...)
}

// sluicectlEnv runs the CLI against addr (when not empty) with the test
// token and more environment variables (an empty value unsets one).
func sluicectlEnv(t *testing.T, addr string, vars map[string]string, args ...string) result {
	t.Helper()
	env := map[string]string{"SLUICE_ADMIN_TOKEN": testToken}
	if addr != "" {
		env["SLUICE_ADDR"] = addr
	}
	for k, v := range vars {
		env[k] = v
	}
	return runCLI(t, "", env, args...)
}

func runCLI(t *testing.T, stdin string, vars map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	env := Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string { return vars[k] },
		Now:    func() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) },
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
