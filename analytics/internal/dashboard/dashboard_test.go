package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/analytics/internal/config"
	"github.com/sluicegw/sluice/analytics/internal/service"
	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/usage"
)

const chromium = "/usr/bin/chromium"

// dashToken is the worker's auth.token.
const dashToken = "dashboard-token-0123456789"

// TestDashboardInChromium loads the dashboard in headless Chromium after
// sending known requests and checks the page shows their counts; it keeps a
// screenshot (copied to $SLUICE_ARTIFACTS_DIR when set). The worker needs a
// token: the page is first loaded without one (it asks for it and shows no
// data), then with a #token= link, which it keeps in localStorage for the
// screenshot's load.
func TestDashboardInChromium(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("SLUICE_REQUIRE_CHROMIUM") != "" {
			t.Fatalf("SLUICE_REQUIRE_CHROMIUM is set but %s is missing: apt-get install -y chromium", chromium)
		}
		t.Skipf("%s not installed (apt-get install -y chromium); set SLUICE_REQUIRE_CHROMIUM=1 to make this a failure", chromium)
	}
	rd, ns := testutil.StartRedis(t), testutil.StartNATS(t)
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.Redis.Addr, cfg.NATS.URL = rd.Addr(), ns.URL()
	cfg.NATS.FetchWait = 100 * time.Millisecond
	cfg.Log.Level = "warn"
	cfg.Auth.Token = dashToken
	svc := service.New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })

	sent := map[string]int{"orders": 37, "users": 12}
	js, _ := jetstream.New(ns.Conn(t))
	for api, n := range sent {
		var data []byte
		for i := 0; i < n; i++ {
			ev := usage.Event{ID: fmt.Sprintf("%s-%d", api, i), Time: time.Now().UnixNano(), API: api,
				KeyHash: "feedc0de", Endpoint: "/x", Status: 200 + 300*(i%4/3), Latency: int64(500 + 100*i)}
			data = usage.AppendJSON(data, &ev)
		}
		m := nats.NewMsg(bus.Names{}.UsageSubject(api))
		m.Data = data
		m.Header.Set(usage.HeaderMsgID, api+"-1")
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	base := "http://" + svc.Addr() + "/"
	testutil.WaitFor(t, 10*time.Second, func() error {
		req, _ := http.NewRequest("GET", base+"v1/usage/totals?api=users", nil)
		req.Header.Set("Authorization", "Bearer "+dashToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("totals: %d", resp.StatusCode)
		}
		return nil
	})

	// Without a token: the form asks for one and no data is shown.
	bare, err := runChromium(t, t.TempDir(), "--dump-dom", base)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(bare, `<form id="login">`) || strings.Contains(bare, "<tr><td>orders</td>") {
		t.Fatalf("page without a token does not ask for one, or shows data:\n%s", bare)
	}

	dir := t.TempDir()
	var dom string
	testutil.WaitFor(t, 60*time.Second, func() error {
		out, err := runChromium(t, dir, "--dump-dom", base+"#token="+dashToken)
		if err != nil {
			return err
		}
		dom = out
		for api, n := range sent {
			row := regexp.MustCompile(`<tr><td>` + api + `</td><td>` + fmt.Sprint(n) + `</td>`)
			if !row.MatchString(dom) {
				return fmt.Errorf("page has no row %s=%d", api, n)
			}
		}
		if !strings.Contains(dom, `<td>feedc0de</td><td>49</td>`) {
			return fmt.Errorf("top keys table does not show feedc0de with 49 requests")
		}
		if strings.Count(dom, "uplot") < 3 {
			return fmt.Errorf("charts not drawn")
		}
		if strings.Contains(dom, dashToken) {
			return fmt.Errorf("the token is still in the page")
		}
		return nil
	})
	shot := filepath.Join(dir, "dashboard.png")
	if _, err := runChromium(t, dir, "--screenshot="+shot, "--window-size=1280,1600", base); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() < 1000 {
		t.Fatalf("no screenshot: %v", err)
	}
	if art := os.Getenv("SLUICE_ARTIFACTS_DIR"); art != "" {
		png, _ := os.ReadFile(shot)
		_ = os.MkdirAll(art, 0o755)
		_ = os.WriteFile(filepath.Join(art, "dashboard.png"), png, 0o644)
		_ = os.WriteFile(filepath.Join(art, "dashboard.html"), []byte(dom), 0o644)
	}
}

func runChromium(t *testing.T, dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--virtual-time-budget=8000"}
	cmd := exec.CommandContext(ctx, chromium, append(base, args...)...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("chromium: %w: %s", err, stderr.String())
	}
	return string(out), nil
}
