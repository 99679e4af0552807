package service

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/testutil"
)

// status sends GET with the Authorization header auth ("": none).
func status(t *testing.T, url, auth string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Error.Code
}

// The query API needs a token (auth.token or one of auth.tokens_file, any
// role); health, readiness, metrics and the dashboard's static page do not.
func TestQueryAPINeedsToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	write := func(data string) {
		if err := os.WriteFile(path+".tmp", []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	const viewer, issuer = "viewer-token-0123456789", "issuer-token-0123456789"
	write("tokens:\n  - {name: v, role: viewer, token: " + viewer + "}\n")
	cfg := e.config()
	cfg.Auth.TokensFile = path
	svc := e.start(t, cfg)
	base := "http://" + svc.Addr()
	q := base + "/v1/usage/top?by=api"
	for _, tc := range []struct {
		url, auth string
		want      int
	}{
		{q, "", 401},
		{q, "Bearer wrong-token-0123456789", 401},
		{q, "Bearer " + testToken + "x", 401},
		{base + "/v1/usage/totals?api=a", "", 401},
		{base + "/v1/nothing", "", 401},
		{q, "Bearer " + testToken, 200},
		{q, "bearer " + viewer, 200},
		{base + "/health", "", 200},
		{base + "/metrics", "", 200},
		{base + "/", "", 200},
		{base + "/static/dashboard.js", "", 200},
	} {
		code, errCode := status(t, tc.url, tc.auth)
		if code != tc.want || (tc.want == 401 && errCode != "unauthorized") {
			t.Errorf("GET %s with %q: %d %q, want %d", tc.url, tc.auth, code, errCode, tc.want)
		}
	}
	write("tokens:\n  - {name: i, role: issuer, token: " + issuer + "}\n")
	testutil.WaitFor(t, 10*time.Second, func() error {
		if code, _ := status(t, q, "Bearer "+issuer); code != 200 {
			return fmt.Errorf("new token: %d", code)
		}
		return nil
	})
	if code, _ := status(t, q, "Bearer "+viewer); code != 401 {
		t.Errorf("removed token: %d, want 401", code)
	}
	if n := metric(t, svc.Addr(), "sluice_analytics_unauthorized_total"); n < 5 {
		t.Errorf("sluice_analytics_unauthorized_total = %v, want at least 5", n)
	}
}

// auth.disabled: true opens the query API.
func TestAuthDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.config()
	cfg.Auth.Token = ""
	cfg.Auth.Disabled = true
	svc := e.start(t, cfg)
	if code, _ := status(t, "http://"+svc.Addr()+"/v1/usage/top?by=api", ""); code != 200 {
		t.Fatalf("auth.disabled: %d, want 200", code)
	}
}
