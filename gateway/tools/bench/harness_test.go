package bench

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// The harness's tokens verify with an independent library against the PEM
// key the API definition carries, only with their own algorithm, and a
// tampered one does not.
func TestJWTSignerTokensVerify(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{model.AlgRS256, model.AlgES256} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			s, err := newJWTSigner(alg)
			if err != nil {
				t.Fatal(err)
			}
			api := &model.API{ID: "a", ListenPath: "/a/", Upstream: model.Upstream{Targets: []string{"http://127.0.0.1:1"}}, Auth: s.jwtAuth("p")}
			if errs := api.Validate(); len(errs) > 0 {
				t.Fatalf("API definition: %v", errs)
			}
			key, err := model.ParseJWTPublicKey(s.pubPEM)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := s.token("bench-client", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			keyFunc := func(*jwt.Token) (any, error) { return key, nil }
			parsed, err := jwt.Parse(tok, keyFunc, jwt.WithValidMethods([]string{alg}), jwt.WithExpirationRequired())
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			claims := parsed.Claims.(jwt.MapClaims)
			if claims["sub"] != "bench-client" || claims["scope"] != jwtScope {
				t.Errorf("claims %v", claims)
			}
			if exp, _ := claims.GetExpirationTime(); exp == nil || time.Until(exp.Time) < time.Hour {
				t.Errorf("expiry %v: a benchmark token must outlive the run", exp)
			}
			parts := strings.Split(tok, ".")
			tampered := parts[0] + "." + parts[1] + "x." + parts[2]
			if _, err := jwt.Parse(tampered, keyFunc, jwt.WithValidMethods([]string{alg})); err == nil {
				t.Error("tampered token verified")
			}
			other := model.AlgES256
			if alg == other {
				other = model.AlgRS256
			}
			if _, err := jwt.Parse(tok, keyFunc, jwt.WithValidMethods([]string{other})); err == nil {
				t.Errorf("token verified with only %s allowed", other)
			}
		})
	}
}

// Each churn change bumps the config version by one and is announced on
// sluice.sync.<kind> with that version, alternating API and policy, as the
// syncer announces its writes.
func TestChurnChangesAreVersionedAndAnnounced(t *testing.T) {
	t.Parallel()
	rdb := testutil.StartRedis(t).Client(t)
	nc := testutil.StartNATS(t).Conn(t)
	msgs := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe(bus.Names{}.SyncWildcard(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st := store.New(rdb, 0)
	c := &churner{st: st, nc: nc, upstream: "127.0.0.1:1", rate: churnRate}
	wantKinds := []string{store.KindAPI, store.KindPolicy, store.KindAPI, store.KindPolicy}
	for i := range wantKinds {
		if err := c.change(ctx, i); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	for i, kind := range wantKinds {
		select {
		case m := <-msgs:
			sm, err := bus.DecodeSyncMessage(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != (bus.Names{}).SyncSubject(kind) || sm.Version != int64(i+1) || sm.Kind() != kind || sm.Changes[0].ID != churnID {
				t.Errorf("message %d on %s: %+v, want version %d kind %s", i, m.Subject, sm, i+1, kind)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d not announced", i)
		}
	}
	if v, err := st.Version(ctx); err != nil || v != int64(len(wantKinds)) {
		t.Errorf("store version %d (%v), want %d", v, err, len(wantKinds))
	}
}

func TestParseConfigVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, text string
		want       int64
		ok         bool
	}{
		{"present", "# HELP sluice_config_version x\n# TYPE sluice_config_version gauge\nsluice_config_version 317\n", 317, true},
		{"float form", "sluice_config_version 1.234e+06\n", 1_234_000, true},
		{"absent", "sluice_config_versions_total 3\nsluice_other 1\n", 0, false},
		{"garbage", "sluice_config_version x\n", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseConfigVersion([]byte(tc.text))
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("got %d, %v; want %d, ok=%v", got, err, tc.want, tc.ok)
			}
		})
	}
}

// The bare hop forwards to the upstream, which counts what it served and
// reports the count on countPath without counting that request.
func TestHopAndUpstreamHandlers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	upLn, hopLn := listen(t), listen(t)
	upAddr, hopAddr := upLn.Addr().String(), hopLn.Addr().String()
	var served atomic.Int64
	go func() { _ = ServeListener(ctx, upLn, "up", UpstreamHandler(&served)) }()
	hc := NewHopClient(upAddr, false)
	defer hc.CloseIdleConnections()
	go func() { _ = ServeListener(ctx, hopLn, "hop", HopHandler(hc)) }()
	r := &run{upstreamAddr: upAddr}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if _, err := r.upstreamCount(); err != nil { // not counted
			return err
		}
		c, err := net.DialTimeout("tcp", hopAddr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	for range 4 {
		code, body, err := get("http://"+hopAddr+"/x", nil)
		if err != nil || code != fasthttp.StatusOK || string(body) != string(upstreamBody) {
			t.Fatalf("via hop: %d %q %v", code, body, err)
		}
	}
	n, err := r.upstreamCount()
	if err != nil || n != 4 || served.Load() != 4 {
		t.Errorf("count %d (%v), served %d; want 4", n, err, served.Load())
	}
}

// listen opens a loopback listener on a port the kernel picks, so no other
// process can take the port between choosing and binding it.
func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}
