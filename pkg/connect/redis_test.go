package connect

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/testutil"
)

// aclUser creates (or resets) an ACL user with password pw that may run
// every command on every key.
func aclUser(t *testing.T, admin *redis.Client, user, pw string) {
	t.Helper()
	if err := admin.Do(context.Background(), "ACL", "SETUSER", user, "reset", "on", ">"+pw, "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newClient(t *testing.T, c Redis) redis.UniversalClient {
	t.Helper()
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatalf("invalid: %v", errs)
	}
	rdb, err := c.Client(zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func setGet(ctx context.Context, rdb redis.UniversalClient, key string) error {
	if err := rdb.Set(ctx, key, "v", 0).Err(); err != nil {
		return err
	}
	v, err := rdb.Get(ctx, key).Result()
	if err == nil && v != "v" {
		err = errors.New("read " + v)
	}
	return err
}

// A client with TLS, a client certificate and an ACL user whose password
// is in a file keeps working after the password is rotated: the file is
// read again for the new connection; so is the client certificate.
func TestRedisTLSACLPasswordRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ca := testutil.NewCA(t)
	r := testutil.StartRedisTLS(t, ca)
	admin := r.Client(t)
	aclUser(t, admin, "sluice", "first-secret")
	dir := t.TempDir()
	pwFile := writeFile(t, dir, "pw", "first-secret\n")
	cl := ca.Client(t, "sluice")
	c := DefaultRedis()
	c.Addr, c.Username, c.PasswordFile = r.TLSAddr(), "sluice", pwFile
	c.TLS = TLSClient{Enabled: true, CAFile: ca.File, CertFile: cl.CertFile, KeyFile: cl.KeyFile}
	rdb := newClient(t, c)
	if err := setGet(ctx, rdb, "k"); err != nil {
		t.Fatal(err)
	}
	who, err := rdb.Do(ctx, "ACL", "WHOAMI").Text()
	if err != nil || who != "sluice" {
		t.Fatalf("ACL WHOAMI = %q, %v", who, err)
	}

	// Rotate: new password in Redis and in the file, old connections cut.
	aclUser(t, admin, "sluice", "second-secret")
	writeFile(t, dir, "pw", "second-secret\n")
	if err := admin.Do(ctx, "CLIENT", "KILL", "USER", "sluice").Err(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, func() error { return setGet(ctx, rdb, "k2") })

	// The client certificate is read at each handshake too: a broken file
	// breaks new connections, a renewed one mends them.
	renewed := ca.Client(t, "sluice")
	writeFile(t, filepath.Dir(cl.KeyFile), filepath.Base(cl.KeyFile), "not a key\n")
	if err := admin.Do(ctx, "CLIENT", "KILL", "USER", "sluice").Err(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if err := setGet(ctx, rdb, "k3"); err == nil || !strings.Contains(err.Error(), "key_file") {
			return fmt.Errorf("with a broken key file: %v", err)
		}
		return nil
	})
	copyFile(t, renewed.CertFile, cl.CertFile)
	copyFile(t, renewed.KeyFile, cl.KeyFile)
	testutil.WaitFor(t, 5*time.Second, func() error { return setGet(ctx, rdb, "k4") })
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRedisCluster(t *testing.T) {
	t.Parallel()
	cl := testutil.StartRedisCluster(t)
	c := DefaultRedis()
	c.Addr, c.ClusterAddrs = "", cl.Addrs()
	rdb := newClient(t, c)
	if _, ok := rdb.(*redis.ClusterClient); !ok {
		t.Fatalf("client is %T, want a cluster client", rdb)
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		if err := setGet(context.Background(), rdb, k); err != nil {
			t.Fatal(err)
		}
	}
}

// A client configured with sentinel.master finds the primary through the
// sentinel and follows it across a failover.
func TestRedisSentinel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := testutil.StartSentinel(t)
	c := DefaultRedis()
	c.Addr = ""
	c.Sentinel = Sentinel{Master: s.Master, Addrs: s.Addrs()}
	rdb := newClient(t, c)
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := setGet(ctx, rdb, "before"); err != nil {
		t.Fatal(err)
	}
	if err := s.Client(t).Failover(ctx, s.Master).Err(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, func() error {
		a, err := s.PrimaryAddr(ctx, t)
		if err == nil && a != s.Replica.Addr() {
			err = errors.New("primary still " + a)
		}
		return err
	})
	testutil.WaitFor(t, 20*time.Second, func() error {
		if err := setGet(ctx, rdb, "after"); err != nil {
			return err
		}
		return s.Replica.Client(t).Get(ctx, "after").Err() // written to the new primary
	})
}

// A frozen Redis costs a command its context's deadline, not the client's
// read timeout.
func TestRedisContextDeadline(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	c := DefaultRedis()
	c.Addr, c.MaxRetries, c.ReadTimeout, c.WriteTimeout = r.Addr(), -1, 5*time.Second, 5*time.Second
	rdb := newClient(t, c)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	r.Pause()
	t.Cleanup(r.Resume)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := rdb.Get(ctx, "k").Err()
	// 2s: far above the 25ms deadline, far below the 5s read timeout.
	if el := time.Since(start); err == nil || el > 2*time.Second {
		t.Fatalf("GET on a frozen Redis: %v after %v, want a timeout near 25ms", err, el)
	}
}

// What no retry will fix fails Client with an error naming the field.
func TestRedisStartErrors(t *testing.T) {
	t.Parallel()
	ca, other := testutil.NewCA(t), testutil.NewCA(t)
	r := testutil.StartRedisTLS(t, ca)
	aclUser(t, r.Client(t), "sluice", "right")
	dir := t.TempDir()
	cl, cl2 := ca.Client(t, "sluice"), ca.Client(t, "other")
	garbage := writeFile(t, dir, "garbage", "not a key\n")
	wrongPW := writeFile(t, dir, "wrong-pw", "wrong\n")
	tlsOK := TLSClient{Enabled: true, CAFile: ca.File, CertFile: cl.CertFile, KeyFile: cl.KeyFile}
	tests := []struct {
		name  string
		set   func(*Redis)
		field string // "" : no error
	}{
		{"all right", func(c *Redis) {}, ""},
		{"missing ca file", func(c *Redis) { c.TLS.CAFile = filepath.Join(dir, "nope.pem") }, "redis.tls.ca_file"},
		{"ca file not PEM", func(c *Redis) { c.TLS.CAFile = garbage }, "redis.tls.ca_file"},
		{"missing cert file", func(c *Redis) { c.TLS.CertFile = filepath.Join(dir, "nope.pem") }, "redis.tls.cert_file"},
		{"unreadable key", func(c *Redis) { c.TLS.KeyFile = garbage }, "redis.tls.key_file"},
		{"key of another certificate", func(c *Redis) { c.TLS.KeyFile = cl2.KeyFile }, "redis.tls.key_file"},
		{"CA that does not verify the server", func(c *Redis) { c.TLS.CAFile = other.File }, "redis.tls.ca_file"},
		{"server name not in the certificate", func(c *Redis) { c.TLS.ServerName = "redis.example" }, "redis.tls.server_name"},
		{"no client certificate", func(c *Redis) { c.TLS.CertFile, c.TLS.KeyFile = "", "" }, "redis.tls.cert_file"},
		{"wrong password", func(c *Redis) { c.Password = "wrong" }, "redis.password"},
		{"unknown user", func(c *Redis) { c.Username = "nobody" }, "redis.password"},
		{"wrong password file", func(c *Redis) { c.Password, c.PasswordFile = "", wrongPW }, "redis.password_file"},
		{"missing password file", func(c *Redis) { c.Password, c.PasswordFile = "", filepath.Join(dir, "nope") }, "redis.password_file"},
		{"unreachable: not an error", func(c *Redis) { c.Addr = "127.0.0.1:1" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := DefaultRedis()
			c.Addr, c.Username, c.Password, c.TLS = r.TLSAddr(), "sluice", "right", tlsOK
			tt.set(&c)
			rdb, err := c.Client(zerolog.Nop())
			if rdb != nil {
				t.Cleanup(func() { _ = rdb.Close() })
			}
			var fe *FieldError
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tt.field == "":
				return
			case !errors.As(err, &fe) || fe.Field != tt.field:
				t.Fatalf("error %v, want one naming %s", err, tt.field)
			case !strings.HasPrefix(err.Error(), tt.field+": "):
				t.Fatalf("message %q does not start with the field", err)
			}
		})
	}
}
