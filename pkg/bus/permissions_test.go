package bus_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicegw/sluice/pkg/bus"
)

// permissionsConf is the example server config the test runs with.
const permissionsConf = "../../deployments/nats/permissions.conf"

var servicePasswords = map[string]string{
	"gateway":    "gateway-secret-0123456789",
	"syncer":     "syncer-secret-0123456789",
	"analytics":  "analytics-secret-0123456789",
	"subscriber": "subscriber-secret-0123456789",
}

// startPermissionsServer runs an embedded NATS server with exactly the
// users and permissions of deployments/nats/permissions.conf, JetStream on
// and a free loopback port.
func startPermissionsServer(t *testing.T) string {
	t.Helper()
	for user, pw := range servicePasswords {
		t.Setenv("SLUICE_NATS_"+strings.ToUpper(user)+"_PASSWORD", pw)
	}
	opts, err := server.ProcessConfigFile(permissionsConf)
	if err != nil {
		t.Fatalf("%s: %v", permissionsConf, err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(srv.Shutdown)
	return fmt.Sprintf("nats://127.0.0.1:%d", srv.Addr().(*net.TCPAddr).Port)
}

// client is one service's connection; violations collects the permission
// errors the server reports to it.
type client struct {
	t          *testing.T
	nc         *nats.Conn
	js         jetstream.JetStream
	violations chan error
}

func connectAs(t *testing.T, url, user string) *client {
	t.Helper()
	c := &client{t: t, violations: make(chan error, 64)}
	nc, err := nats.Connect(url, nats.UserInfo(user, servicePasswords[user]), nats.Name(user),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				c.violations <- err
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return c
}

// denied waits for the server to refuse an operation on subject.
func (c *client) denied(what, subject string) {
	c.t.Helper()
	_ = c.nc.Flush()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case err := <-c.violations:
			if strings.Contains(err.Error(), `"`+subject+`"`) {
				return
			}
		case <-deadline:
			c.t.Fatalf("%s: %s on %q was not refused", c.nc.Opts.Name, what, subject)
		}
	}
}

func (c *client) publishDenied(subject string) {
	c.t.Helper()
	if err := c.nc.Publish(subject, []byte(`{"version":1}`)); err != nil {
		c.t.Fatal(err)
	}
	c.denied("publish", subject)
}

func (c *client) subscribeDenied(subject string) {
	c.t.Helper()
	if _, err := c.nc.SubscribeSync(subject); err != nil {
		c.t.Fatal(err)
	}
	c.denied("subscribe", subject)
}

func (c *client) subscribe(subject string) *nats.Subscription {
	c.t.Helper()
	sub, err := c.nc.SubscribeSync(subject)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.nc.Flush(); err != nil {
		c.t.Fatal(err)
	}
	return sub
}

func (c *client) clean() {
	c.t.Helper()
	_ = c.nc.Flush()
	select {
	case err := <-c.violations:
		c.t.Fatalf("%s: unexpected %v", c.nc.Opts.Name, err)
	default:
	}
}

// short is the context of a request the server refuses: it never gets an
// answer.
func short(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	t.Cleanup(cancel)
	return ctx
}

func receive(t *testing.T, sub *nats.Subscription, what string) *nats.Msg {
	t.Helper()
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("%s not received on %s: %v", what, sub.Subject, err)
	}
	return m
}

// TestNATSPermissions runs the example permissions: each service's user
// can do what the service needs, and is refused what it must not do.
// The subtests run in order on one server, not in parallel: analytics
// fetches the event the gateway published, and the passwords are set in
// the environment the config file reads them from.
func TestNATSPermissions(t *testing.T) {
	url := startPermissionsServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gw := connectAs(t, url, "gateway")
	sy := connectAs(t, url, "syncer")
	an := connectAs(t, url, "analytics")
	sb := connectAs(t, url, "subscriber")
	// The file grants the default namespace's subjects and stream.
	n := bus.Names{}

	t.Run("gateway", func(t *testing.T) {
		gw.t, sy.t, sb.t = t, t, t
		if _, err := bus.CreateUsageStream(ctx, gw.js, n, bus.StreamOptions{}); err != nil {
			t.Fatalf("create usage stream: %v", err)
		}
		if _, err := bus.CreateUsageStream(ctx, gw.js, n, bus.StreamOptions{}); err != nil { // it exists now: info only
			t.Fatalf("create usage stream again: %v", err)
		}
		tail := sb.subscribe(n.UsageWildcard())
		if _, err := gw.js.Publish(ctx, n.UsageSubject("orders"), []byte(`[{"api":"orders"}]`)); err != nil {
			t.Fatalf("publish usage: %v", err)
		}
		receive(t, tail, "usage event")
		beats := sy.subscribe(n.NodesWildcard())
		if err := gw.nc.Publish(n.NodeSubject("gw-1"), []byte(`{"id":"gw-1"}`)); err != nil {
			t.Fatal(err)
		}
		receive(t, beats, "heartbeat")
		changes := gw.subscribe(n.SyncWildcard())
		if err := sy.nc.Publish(n.SyncSubject("api"), []byte(`{"version":1}`)); err != nil {
			t.Fatal(err)
		}
		receive(t, changes, "sync message")
		gw.clean()
		sy.clean()

		gw.publishDenied(n.SyncSubject("api"))
		gw.publishDenied(n.RollupSubject("orders"))
		gw.subscribeDenied(n.NodesWildcard())
		gw.subscribeDenied(n.UsageWildcard())
		s, err := gw.js.Stream(ctx, n.UsageStream())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateOrUpdateConsumer(short(t), jetstream.ConsumerConfig{Durable: "spy"}); err == nil {
			t.Fatal("gateway created a consumer on the usage stream")
		}
		gw.denied("consumer create", "$JS.API.CONSUMER.CREATE.SLUICE_USAGE.spy")
		if err := gw.js.DeleteStream(short(t), n.UsageStream()); err == nil {
			t.Fatal("gateway deleted the usage stream")
		}
		gw.denied("stream delete", "$JS.API.STREAM.DELETE.SLUICE_USAGE")
		if _, err := bus.ConfigureUsageStream(short(t), gw.js, n, bus.StreamOptions{MaxAge: time.Hour}); err == nil {
			t.Fatal("gateway changed the usage stream's settings")
		}
		gw.denied("stream update", "$JS.API.STREAM.UPDATE.SLUICE_USAGE")
	})

	t.Run("syncer", func(t *testing.T) {
		sy.t = t
		sy.publishDenied(n.UsageSubject("orders"))
		sy.publishDenied(n.NodeSubject("fake"))
		sy.subscribeDenied(n.SyncWildcard())
		sy.subscribeDenied(n.UsageWildcard())
	})

	t.Run("analytics", func(t *testing.T) {
		an.t, sb.t = t, t
		s, err := bus.ConfigureUsageStream(ctx, an.js, n, bus.StreamOptions{})
		if err != nil {
			t.Fatalf("configure usage stream: %v", err)
		}
		cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "sluice-analytics",
			FilterSubject: n.UsageWildcard(), AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy})
		if err != nil {
			t.Fatalf("create consumer: %v", err)
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
		if got != 1 || batch.Error() != nil {
			t.Fatalf("fetched %d events (%v), want the gateway's one", got, batch.Error())
		}
		if _, err := cons.Info(ctx); err != nil {
			t.Fatalf("consumer info: %v", err)
		}
		if _, err := s.GetMsg(ctx, 1); err != nil {
			t.Fatalf("stream get: %v", err)
		}
		rollups := sb.subscribe(n.RollupWildcard())
		if err := an.nc.Publish(n.RollupSubject("orders"), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		receive(t, rollups, "rollup")
		an.clean()

		an.publishDenied(n.UsageSubject("orders"))
		an.publishDenied(n.SyncSubject("api"))
		an.publishDenied(n.NodeSubject("fake"))
		an.subscribeDenied(n.SyncWildcard())
		if err := s.Purge(short(t)); err == nil {
			t.Fatal("analytics purged the usage stream")
		}
		an.denied("stream purge", "$JS.API.STREAM.PURGE.SLUICE_USAGE")
	})

	t.Run("subscriber", func(t *testing.T) {
		sb.t = t
		sb.clean()
		sb.publishDenied(n.UsageSubject("orders"))
		sb.publishDenied(n.SyncSubject("api"))
		sb.publishDenied(n.NodeSubject("fake"))
		sb.subscribeDenied(n.SyncWildcard())
		sb.subscribeDenied(n.NodesWildcard())
		sb.publishDenied("$JS.API.STREAM.INFO.SLUICE_USAGE")
	})

	// Another namespace's subjects are outside every grant of the file.
	t.Run("other namespace", func(t *testing.T) {
		gw.t, sy.t, an.t, sb.t = t, t, t, t
		other := bus.NewNames("staging")
		gw.publishDenied(other.UsageSubject("orders"))
		gw.publishDenied(other.NodeSubject("gw-1"))
		gw.subscribeDenied(other.SyncWildcard())
		sy.publishDenied(other.SyncSubject("api"))
		an.publishDenied(other.RollupSubject("orders"))
		an.publishDenied("$JS.API.STREAM.INFO." + other.UsageStream())
		sb.subscribeDenied(other.UsageWildcard())
	})
}
