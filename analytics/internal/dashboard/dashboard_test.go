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

	"github.com/sluicegw/sluice/analytics/internal/service"
	"github.com/sluicegw/sluice/analytics/internal/settings"
	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/usage"
)

const chromium = "/usr/bin/chromium"

// dashToken is the worker's auth.token.
const dashToken = "dashboard-token-0123456789"

// Keys of the test: hash -> key id and alias, as the gateway puts them in
// the usage events.
var (
	acmeHash    = strings.Repeat("ac", 32)
	partnerHash = strings.Repeat("9f", 32)
)

// TestDashboardInChromium loads the dashboard in headless Chromium after
// sending known requests and checks the page shows their counts: by API
// with status classes, error and limited rates and units, top keys by
// alias and key id (never by hash), top endpoints, the ranges (an API used
// two days ago shows in the last 7 days only, summed by 1h) and one key's
// drill-down. It keeps a screenshot (written to $SLUICE_DASHBOARD_SCREENSHOT
// when set, e.g. docs/img/dashboard.png; copied to $SLUICE_ARTIFACTS_DIR
// when set). The worker needs a token: the page is first loaded without
// one (it asks for it and shows no data), then with a #token= link, which
// it keeps in localStorage for the later loads.
func TestDashboardInChromium(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("SLUICE_REQUIRE_CHROMIUM") != "" {
			t.Fatalf("SLUICE_REQUIRE_CHROMIUM is set but %s is missing: apt-get install -y chromium", chromium)
		}
		t.Skipf("%s not installed (apt-get install -y chromium); set SLUICE_REQUIRE_CHROMIUM=1 to make this a failure", chromium)
	}
	rd, ns := testutil.StartRedis(t), testutil.StartNATS(t)
	cfg := settings.Default()
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

	now := time.Now()
	exp := publish(t, ns, map[string][]usage.Event{
		"orders":  events("orders", 40, now.Add(-20*time.Minute)),
		"users":   events("users", 12, now.Add(-10*time.Minute)),
		"archive": events("archive", 5, now.Add(-48*time.Hour)),
	})
	base := "http://" + svc.Addr() + "/"
	testutil.WaitFor(t, 10*time.Second, func() error {
		req, _ := http.NewRequest("GET", base+"v1/usage/totals?api=archive", nil)
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
	views := []struct {
		name, query string
		want        []string // what the page must hold
		notWant     []string
		wantRe      string
	}{
		{"last hour", "#token=" + dashToken, exp.view("orders", "users"), []string{"<td>archive</td>"}, `Last hour · 6[01] points of 1m`},
		{"last 7 days", "?range=7d", append(exp.view("orders", "users", "archive"), exp.row("archive")), nil, `Last 7 days · 16[89] points of 1h`},
		{"custom range of two days ago", "?range=custom&from=" + now.Add(-50*time.Hour).UTC().Format(time.RFC3339) +
			"&to=" + now.Add(-46*time.Hour).UTC().Format(time.RFC3339), []string{exp.row("archive")},
			[]string{"<td>orders</td>"}, `From .* · 24[01] points of 1m`},
		{"drill-down of key acme", "?range=7d&key=" + acmeHash, []string{"acme · key id key-1",
			exp.drillRow("orders"), exp.drillRow("archive")}, []string{"<td>users</td>"}, ""},
	}
	var dom string
	for _, v := range views {
		testutil.WaitFor(t, 120*time.Second, func() error {
			out, err := runChromium(t, dir, "--dump-dom", base+v.query)
			if err != nil {
				return err
			}
			dom = out
			for _, w := range v.want {
				if !strings.Contains(dom, w) {
					return fmt.Errorf("%s: page has no %s", v.name, w)
				}
			}
			if v.wantRe != "" && !regexp.MustCompile(v.wantRe).MatchString(dom) {
				return fmt.Errorf("%s: page does not match %s", v.name, v.wantRe)
			}
			for _, w := range v.notWant {
				if strings.Contains(dom, w) {
					return fmt.Errorf("%s: page shows %s", v.name, w)
				}
			}
			if strings.Count(dom, "uplot") < 4 {
				return fmt.Errorf("%s: charts not drawn", v.name)
			}
			for _, secret := range []string{dashToken, acmeHash, partnerHash} {
				if strings.Contains(dom, secret) {
					return fmt.Errorf("%s: the page holds %.12s…", v.name, secret)
				}
			}
			return nil
		})
	}
	shot := filepath.Join(dir, "dashboard.png")
	if _, err := runChromium(t, dir, "--screenshot="+shot, "--window-size=1400,1900", base+"?range=24h"); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() < 1000 {
		t.Fatalf("no screenshot: %v", err)
	}
	png, _ := os.ReadFile(shot)
	if p := os.Getenv("SLUICE_DASHBOARD_SCREENSHOT"); p != "" {
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if art := os.Getenv("SLUICE_ARTIFACTS_DIR"); art != "" {
		_ = os.MkdirAll(art, 0o755)
		_ = os.WriteFile(filepath.Join(art, "dashboard.png"), png, 0o644)
		_ = os.WriteFile(filepath.Join(art, "dashboard.html"), []byte(dom), 0o644)
	}
}

// events makes n events of api at (and just after) at: even ones by acme,
// odd ones by partner (users: keyless); of every ten, seven 200s with
// units, a 404, a 429 refused by a rate limit and a 503.
func events(api string, n int, at time.Time) []usage.Event {
	var evs []usage.Event
	for i := 0; i < n; i++ {
		ev := usage.Event{ID: fmt.Sprintf("%s-%d", api, i), Time: at.Add(time.Duration(i) * time.Second).UnixNano(),
			API: api, Endpoint: "/" + api + "/{id}", Status: 200, Latency: int64(500 + 100*i)}
		switch i % 10 {
		case 7:
			ev.Status = 404
		case 8:
			ev.Status, ev.Limited = 429, "rate"
		case 9:
			ev.Status = 503
		default:
			ev.Units = int64(100 + 37*i)
		}
		switch {
		case api == "users":
		case i%2 == 0:
			ev.KeyHash, ev.KeyID, ev.KeyAlias = acmeHash, "key-1", "acme"
		default:
			ev.KeyHash, ev.KeyID, ev.KeyAlias = partnerHash, "key-2", "Partner Ltd"
		}
		evs = append(evs, ev)
	}
	return evs
}

// sums are what was sent, by API and by key hash and API.
type sums map[string]*counts

type counts struct{ n, c2, c4, c5, limited, units int64 }

func (c *counts) add(e *usage.Event) {
	c.n++
	c.units += e.Units
	switch e.Status / 100 {
	case 2:
		c.c2++
	case 4:
		c.c4++
	case 5:
		c.c5++
	}
	if e.Limited != "" {
		c.limited++
	}
}

func publish(t *testing.T, ns *testutil.NATS, byAPI map[string][]usage.Event) sums {
	s := sums{}
	js, _ := jetstream.New(ns.Conn(t))
	for api, evs := range byAPI {
		var data []byte
		for i := range evs {
			data = usage.AppendJSON(data, &evs[i])
			for _, k := range []string{api, evs[i].KeyHash + " " + api, evs[i].KeyHash} {
				if s[k] == nil {
					s[k] = &counts{}
				}
				s[k].add(&evs[i])
			}
		}
		m := nats.NewMsg(bus.Names{}.UsageSubject(api))
		m.Data = data
		m.Header.Set(usage.HeaderMsgID, api+"-1")
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// cells renders counts as the dashboard's status cells: requests, 2xx, 3xx,
// 4xx, 5xx, error rate, limited rate, units.
func (c *counts) cells() string {
	pct := func(n int64) string { return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(c.n)) }
	u := "–"
	if c.units > 0 {
		u = commas(c.units)
	}
	return fmt.Sprintf("<td>%d</td><td>%d</td><td>0</td><td>%d</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td>",
		c.n, c.c2, c.c4, c.c5, pct(c.c5), pct(c.limited), u)
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func (s sums) row(api string) string { return "<tr><td>" + api + "</td>" + s[api].cells() }

func (s sums) drillRow(api string) string {
	return "<tr><td>" + api + "</td>" + s[acmeHash+" "+api].cells()
}

// view is what a range holding the usage of apis shows: the APIs, the
// keys by alias and key id with their totals over those APIs, an endpoint.
func (s sums) view(apis ...string) []string {
	recent := func(h string) *counts {
		c := &counts{}
		for _, api := range apis {
			if x := s[h+" "+api]; x != nil {
				c.n, c.c2, c.c4, c.c5, c.limited, c.units = c.n+x.n, c.c2+x.c2, c.c4+x.c4, c.c5+x.c5, c.limited+x.limited, c.units+x.units
			}
		}
		return c
	}
	return []string{s.row("orders"), s.row("users"),
		"<tr><td>acme</td><td>key-1</td>" + recent(acmeHash).cells(),
		"<tr><td>Partner Ltd</td><td>key-2</td>" + recent(partnerHash).cells(),
		"<tr><td>(keyless)</td><td>–</td>" + recent("").cells(),
		"<tr><td>/orders/{id}</td><td>orders</td>" + s["orders"].cells()}
}

func runChromium(t *testing.T, dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
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
