package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/internal/settings"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// --scenarios: names and groups bring what their figures are computed
// against; an unknown name is an error naming it.
func TestSelect(t *testing.T) {
	t.Parallel()
	all, err := Select("")
	if err != nil {
		t.Fatal(err)
	}
	for _, names := range groups {
		for _, n := range names {
			if !all[n] {
				t.Errorf("the default selection lacks %s", n)
			}
		}
	}
	cases := []struct {
		spec      string
		want, not []string
	}{
		{"gateway-https", []string{ScenHTTPS, ScenBareHopTLS, ScenFull, ScenBareHop}, []string{ScenKeyless, ScenSSE, ScenChurn}},
		{"sse", []string{ScenSSE, ScenSSEHop}, []string{ScenBareHop, ScenStream}},
		{"gateway-full@half", []string{ScenFullHalf, ScenBareHopHalf, ScenFull, ScenBareHop}, []string{ScenLeaseHalf}},
		{" limits , stream-10mib", []string{ScenIP, ScenCost, ScenFull, ScenStream, ScenStreamHop}, []string{ScenSSE, ScenAccessLog}},
		{"edge", []string{ScenBareHopTLS, ScenHTTPS, ScenRedisTLS, ScenAccessLog, ScenFull}, []string{ScenIP, ScenUpstream}},
	}
	for _, c := range cases {
		sel, err := Select(c.spec)
		if err != nil {
			t.Errorf("Select(%q): %v", c.spec, err)
			continue
		}
		for _, n := range c.want {
			if !sel[n] {
				t.Errorf("Select(%q) lacks %s", c.spec, n)
			}
		}
		for _, n := range c.not {
			if sel[n] {
				t.Errorf("Select(%q) has %s", c.spec, n)
			}
		}
	}
	for _, bad := range []string{"gateway-fulll", "edge,nope", ","} {
		if _, err := Select(bad); err == nil {
			t.Errorf("Select(%q) accepted", bad)
		} else if name := strings.Trim(strings.Split(bad, ",")[len(strings.Split(bad, ","))-1], " "); name != "" && !strings.Contains(err.Error(), name) {
			t.Errorf("Select(%q): %v does not name %q", bad, err, name)
		}
	}
}

func TestParseProcStatus(t *testing.T) {
	t.Parallel()
	status := "Name:\tsluice-gateway\nVmPeak:\t 1300000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t9\n"
	m, ok := parseProcStatus([]byte(status))
	if !ok || m.RSSMiB != 40 || m.PeakMiB != 50 {
		t.Errorf("parseProcStatus = %+v, %v; want RSS 40, peak 50", m, ok)
	}
	for _, bad := range []string{"VmRSS:\t 40960 kB\n", "VmHWM:\t1 kB\nVmRSS:\tx kB\n", "VmHWM:\t1 MB\nVmRSS:\t1 kB\n", ""} {
		if m, ok := parseProcStatus([]byte(bad)); ok {
			t.Errorf("parseProcStatus(%q) = %+v, ok", bad, m)
		}
	}
	own, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc")
	}
	if m, ok := parseProcStatus(own); !ok || m.RSSMiB <= 0 || m.PeakMiB < m.RSSMiB {
		t.Errorf("own status: %+v, %v", m, ok)
	}
}

func TestReadEvents(t *testing.T) {
	t.Parallel()
	sent := time.Unix(1700000000, 5)
	stream := "id: 0\ndata: 1700000000000000005\n\n: comment\nid: 1\ndata: 1700000000000000105\n\n"
	var got []time.Time
	n, events, err := readEvents(strings.NewReader(stream), func(i int, s, _ time.Time) {
		if i != len(got) {
			t.Errorf("event index %d, want %d", i, len(got))
		}
		got = append(got, s)
	})
	if err != nil || events != 2 || n != int64(len(stream)) {
		t.Fatalf("readEvents = %d bytes, %d events, %v; want %d, 2, nil", n, events, err, len(stream))
	}
	if !got[0].Equal(sent) || got[1].Sub(got[0]) != 100 {
		t.Errorf("sent times %v", got)
	}
	if _, _, err := readEvents(strings.NewReader("data: soon\n\n"), func(int, time.Time, time.Time) {}); err == nil || !strings.Contains(err.Error(), "soon") {
		t.Errorf("bad data: %v", err)
	}
}

// The upstream's bench paths: the cost header, the large body and the
// event stream, each reaching the client through the streaming hop whole;
// the HTTPS hop forwards to the plain upstream.
func TestUpstreamPathsThroughHops(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := newCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	upLn, hopLn, tlsLn := listen(t), listen(t), listen(t)
	var served atomic.Int64
	go func() { _ = ServeListener(ctx, upLn, "up", UpstreamHandler(&served)) }()
	stream := NewHopClient(upLn.Addr().String(), true)
	defer stream.CloseIdleConnections()
	go func() { _ = ServeListener(ctx, hopLn, "hop", HopHandler(stream)) }()
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	plain := NewHopClient(upLn.Addr().String(), false)
	defer plain.CloseIdleConnections()
	tlsHop := tls.NewListener(tlsLn, &tls.Config{Certificates: []tls.Certificate{cert}})
	go func() { _ = ServeListener(ctx, tlsHop, "hop-tls", PlainUpstream(HopHandler(plain))) }()
	hop := "http://" + hopLn.Addr().String()
	r := &run{certs: c}
	testutil.WaitFor(t, 5*time.Second, func() error { _, _, err := r.get(hop+countPath, nil); return err })

	// HTTPS in, plain HTTP to the upstream, the certificate verified.
	code, body, err := r.get("https://"+tlsLn.Addr().String()+"/", nil)
	if err != nil || code != 200 || string(body) != string(upstreamBody) {
		t.Fatalf("through the HTTPS hop: %d %q %v", code, body, err)
	}

	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(hop + costPath)
	if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil || string(resp.Header.Peek(costHeader)) != upstreamCost {
		t.Fatalf("cost path: %v, %s %q", err, costHeader, resp.Header.Peek(costHeader))
	}

	var st streamStats
	fetchStream(ctx, http.DefaultClient, hop+bigPath, streamBig, &st)
	if st.requests.Load() != 1 || st.errs.Load() != 0 || st.bytes.Load() != streamBytes || st.ttfb.Count() != 1 {
		t.Errorf("10 MiB through the streaming hop: %d requests, %d errors, %d bytes", st.requests.Load(), st.errs.Load(), st.bytes.Load())
	}
	resp2, err := http.Get(hop + ssePath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	if ct := resp2.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("SSE content type %q", ct)
	}
	_, events, err := readEvents(bufio.NewReader(resp2.Body), func(int, time.Time, time.Time) {})
	if err != nil || events != sseEvents {
		t.Errorf("SSE through the streaming hop: %d events, %v; want %d", events, err, sseEvents)
	}
	if served.Load() != 4 {
		t.Errorf("upstream served %d requests, want 4 (count requests not counted)", served.Load())
	}
}

// The run's certificate verifies for 127.0.0.1 under its CA only.
func TestCertsVerify(t *testing.T) {
	t.Parallel()
	c, err := newCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(c.CertFile) {
		t.Errorf("certificate path %q is relative: redis-server, run in its own folder, would not find it", c.CertFile)
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	l := listen(t)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}}).Handshake()
	}()
	conn, err := tls.Dial("tcp", l.Addr().String(), c.clientConfig())
	if err != nil {
		t.Fatalf("handshake with the run's CA: %v", err)
	}
	conn.Close()
	other, err := newCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Leaf.Verify(x509Opts(other)); err == nil {
		t.Error("the certificate verified under another run's CA")
	}
}

// Every node the harness plans writes a configuration the gateway loads
// and accepts, with the sections the scenario needs.
func TestNodeConfigsLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, err := newCerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := &run{opt: Options{OutDir: dir}, certs: c, redisTLSAddr: "127.0.0.1:6380"}
	r.rdb = testutil.StartRedis(t).Client(t)
	if err := r.planNodes(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node{r.gw, r.redisTLSNode, r.accessLogNode} {
		path := filepath.Join(dir, n.name+".yaml")
		if err := os.WriteFile(path, []byte(n.config("nats://127.0.0.1:4999", c)), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := settings.Load(path)
		if err != nil {
			t.Fatalf("%s: %v", n.name, err)
		}
		if errs := cfg.Validate(); len(errs) > 0 {
			t.Fatalf("%s: %v", n.name, errs.Err())
		}
		switch n {
		case r.gw:
			if cfg.TLS.Listen == "" || len(cfg.TLS.Certificates) != 1 || cfg.Redis.TLS.Enabled || cfg.AccessLog.Mode == "all" {
				t.Errorf("main node: tls %+v, redis tls %v, access log %q", cfg.TLS, cfg.Redis.TLS.Enabled, cfg.AccessLog.Mode)
			}
		case r.redisTLSNode:
			if !cfg.Redis.TLS.Enabled || cfg.Redis.Addr != r.redisTLSAddr || cfg.Redis.TLS.CAFile != c.CAFile {
				t.Errorf("redis TLS node: %+v", cfg.Redis)
			}
		case r.accessLogNode:
			if cfg.AccessLog.Mode != "all" || !strings.HasSuffix(cfg.AccessLog.Path, "access.log") {
				t.Errorf("access log node: %+v", cfg.AccessLog)
			}
		}
	}
}

// The seeded APIs and policies of the new scenarios are what they claim:
// a per-IP limit, a cost limit settled from the upstream's header, and
// streaming selected for event streams and large bodies.
func TestSeedScenarioAPIs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := store.New(testutil.StartRedis(t).Client(t), 0)
	if err := seed(ctx, st, "127.0.0.1:1", nil); err != nil {
		t.Fatal(err)
	}
	snap, err := st.LoadSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	apis, pols := map[string]*model.API{}, map[string]*model.Policy{}
	for i := range snap.APIs {
		apis[snap.APIs[i].ID] = &snap.APIs[i]
	}
	for i := range snap.Policies {
		pols[snap.Policies[i].ID] = &snap.Policies[i]
	}
	ip, cost, sm := apis["bench-ip"], pols["bench-cost"], apis["bench-stream"]
	if ip == nil || cost == nil || sm == nil || apis["bench-cost"] == nil {
		t.Fatalf("seeded APIs %v, policies %v", apis, pols)
	}
	if ip.Auth.Mode != model.AuthKeyless || ip.RateLimit == nil || len(ip.RateLimit.LimitBy) != 1 || ip.RateLimit.LimitBy[0] != model.LimitByClientIP {
		t.Errorf("bench-ip: %+v", ip)
	}
	if u := cost.RateLimit.Units; u == nil || u.From != model.UnitsResponseHeader || u.Header != costHeader || u.Reserve != costReserve {
		t.Errorf("bench-cost units: %+v", cost.RateLimit.Units)
	}
	var h fasthttp.ResponseHeader
	h.SetContentType("text/event-stream; charset=utf-8")
	if sm.Streaming == nil || !sm.Streaming.StreamsContentType(h.ContentType()) || sm.Streaming.MinBytes > streamBytes {
		t.Errorf("bench-stream streaming: %+v", sm.Streaming)
	}
}

// finish reports the new comparisons: the access log against its 0.90
// goal, the memory goal, and the streams against their hop.
func TestReportEdgeAndStreamFigures(t *testing.T) {
	t.Parallel()
	rep := &Report{}
	for _, r := range []*Result{
		{Name: ScenBareHop, RPS: 1000},
		{Name: ScenFull, RPS: 700, GatewayMemory: &Memory{RSSMiB: 60, PeakMiB: 61}},
		{Name: ScenAccessLog, RPS: 600},
		{Name: ScenHTTPS, RPS: 500},
		{Name: ScenBareHopTLS, RPS: 800},
		{Name: ScenStreamHop, RPS: 20, Stream: &StreamResult{Kind: streamBig, MiBps: 200}},
		{Name: ScenStream, RPS: 15, Stream: &StreamResult{Kind: streamBig, MiBps: 150}},
		{Name: ScenSSEHop, Stream: &StreamResult{Kind: streamSSE, EventP99ms: 1}},
		{Name: ScenSSE, Stream: &StreamResult{Kind: streamSSE, EventP99ms: 1.5}},
	} {
		rep.add(r)
	}
	rep.finish()
	targets := map[string]Target{}
	for _, tg := range rep.Targets {
		targets[tg.Name] = tg
	}
	check := func(name string, value float64, met, info bool) {
		t.Helper()
		tg, ok := targets[name]
		if !ok {
			t.Errorf("no target %q in %v", name, rep.Targets)
			return
		}
		if d := tg.Value - value; d > 1e-9 || d < -1e-9 || tg.Met != met || tg.Info != info {
			t.Errorf("%s = %.4f met %v info %v; want %.4f, %v, %v", name, tg.Value, tg.Met, tg.Info, value, met, info)
		}
	}
	check(ScenAccessLog+" vs "+ScenFull, 600.0/700, false, false)
	check(ScenHTTPS+" vs "+ScenFull, 500.0/700, true, true)
	check(ScenHTTPS+" vs "+ScenBareHopTLS, 500.0/800, true, true)
	check(ScenBareHopTLS+" vs "+ScenBareHop, 0.8, true, true)
	check(ScenFull+" gateway RSS", 60, false, false)
	check(ScenStream+" throughput", 0.75, true, true)
	check(ScenSSE+" event latency added", 0.5, true, true)
	if s := rep.find(ScenStream); s.Ratio != 0 || s.Stream.Ratio != 0.75 {
		t.Errorf("stream ratios: requests %v, MiB/s %v; want 0 (requests of 10 MiB are not the hop's) and 0.75", s.Ratio, s.Stream.Ratio)
	}
	var out bytes.Buffer
	rep.WriteTable(&out)
	for _, want := range []string{"Streams (TTFB", "stream-10mib ", "0.75", "Gateway memory", "MISSED gateway-accesslog vs gateway-full"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func x509Opts(c *certs) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: c.pool, DNSName: "127.0.0.1"}
}
