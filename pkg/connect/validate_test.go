package connect

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/config"
	"github.com/sluicegw/sluice/pkg/validation"
)

// section is how services embed the connections.
type section struct {
	Redis Redis `yaml:"redis"`
	NATS  NATS  `yaml:"nats"`
}

func defaults() section { return section{Redis: DefaultRedis(), NATS: DefaultNATS()} }

func (s *section) validate() validation.Errors {
	var errs validation.Errors
	errs.Merge("redis", s.Redis.Validate())
	errs.Merge("nats", s.NATS.Validate())
	return errs
}

func TestDefaultsValid(t *testing.T) {
	t.Parallel()
	s := defaults()
	if errs := s.validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
}

// Every problem is reported, with the path of its field.
func TestValidateNamesFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		env  []string
		want []string
	}{
		{"single", "redis: {addr: 10.0.0.1:6379, db: 3}", nil, nil},
		{"fields of earlier releases", "redis: {addr: 'a:1', cluster_addrs: [], password: p, db: 1, pool_size: 5, dial_timeout: 2s}\nnats: {url: 'nats://n:4222'}", nil, nil},
		{"bad addr", "redis: {addr: 10.0.0.1}", nil, []string{"redis.addr"}},
		{"cluster", "", []string{"SLUICE_REDIS_CLUSTER_ADDRS=a:1, b:2"}, nil},
		{"cluster seed without port", "redis: {cluster_addrs: [a:1, b]}", nil, []string{"redis.cluster_addrs[1]"}},
		{"cluster with db", "redis: {cluster_addrs: [a:1], db: 1}", nil, []string{"redis.db"}},
		{"cluster and sentinel", "redis: {cluster_addrs: [a:1], sentinel: {master: m, addrs: [s:1]}}", nil, []string{"redis.sentinel.master"}},
		{"sentinel", "", []string{"SLUICE_REDIS_SENTINEL_MASTER=m", "SLUICE_REDIS_SENTINEL_ADDRS=s1:26379,s2:26379"}, nil},
		{"sentinel without addrs", "redis: {sentinel: {master: m}}", nil, []string{"redis.sentinel.addrs"}},
		{"sentinel bad addr", "redis: {sentinel: {master: m, addrs: [s1]}}", nil, []string{"redis.sentinel.addrs[0]"}},
		{"sentinel addrs without master", "redis: {sentinel: {addrs: [s:1]}}", nil, []string{"redis.sentinel.master"}},
		{"sentinel user without password", "redis: {sentinel: {master: m, addrs: [s:1], username: u}}", nil, []string{"redis.sentinel.password"}},
		{"password and file", "redis: {password: x, password_file: /f}", nil, []string{"redis.password_file"}},
		{"user without password", "redis: {username: u}", nil, []string{"redis.password"}},
		{"negatives", "redis: {db: -1, pool_size: -1, max_retries: -2}", nil, []string{"redis.db", "redis.pool_size", "redis.max_retries"}},
		{"timeouts", "redis: {dial_timeout: 0s, read_timeout: 0s, write_timeout: 0s}", nil,
			[]string{"redis.dial_timeout", "redis.read_timeout", "redis.write_timeout"}},
		{"tls files without tls", "redis: {tls: {ca_file: /ca.pem}}", nil, []string{"redis.tls.ca_file"}},
		{"cert without key", "", []string{"SLUICE_REDIS_TLS_ENABLED=true", "SLUICE_REDIS_TLS_CERT_FILE=/c.pem"}, []string{"redis.tls.key_file"}},
		{"key without cert", "nats: {tls: {enabled: true, key_file: /k.pem}}", nil, []string{"nats.tls.cert_file"}},
		{"insecure with ca", "nats: {tls: {enabled: true, insecure_skip_verify: true, ca_file: /ca}}", nil, []string{"nats.tls.insecure_skip_verify"}},
		{"nats urls", "nats: {url: 'nats://a:4222, tls://b:4222'}", nil, nil},
		{"nats url", "nats: {url: 'a:4222'}", nil, []string{"nats.url"}},
		{"nats scheme", "", []string{"SLUICE_NATS_URL=http://a:4222"}, []string{"nats.url"}},
		{"nats empty url", "nats: {url: ''}", nil, []string{"nats.url"}},
		{"nats user without password", "nats: {user: u}", nil, []string{"nats.password"}},
		{"nats two credentials", "nats: {token: t, creds_file: /c}", nil, []string{"nats.creds_file"}},
		{"nats user and nkey", "", []string{"SLUICE_NATS_USER=u", "SLUICE_NATS_PASSWORD=p", "SLUICE_NATS_NKEY_SEED_FILE=/s"}, []string{"nats.nkey_seed_file"}},
		{"nats timings", "nats: {connect_timeout: 0s, reconnect_wait: -1s, max_reconnects: -2}", nil,
			[]string{"nats.connect_timeout", "nats.reconnect_wait", "nats.max_reconnects"}},
		{"namespaces", "redis: {namespace: staging}\nnats: {namespace: staging}", nil, nil},
		{"bad namespaces", "redis: {namespace: 'a:{b}'}\nnats: {namespace: 'a.>'}", nil, []string{"redis.namespace", "nats.namespace"}},
		{"empty namespaces", "redis: {namespace: ''}", []string{"SLUICE_NATS_NAMESPACE="}, []string{"redis.namespace", "nats.namespace"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := defaults()
			if err := config.Decode([]byte(tt.yaml), &s); err != nil {
				t.Fatal(err)
			}
			if err := config.ApplyEnv(config.Prefix, tt.env, &s); err != nil {
				t.Fatal(err)
			}
			errs := s.validate()
			var got []string
			for _, p := range errs {
				got = append(got, p.Field)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("problems %v\nwant on %v", errs, tt.want)
			}
		})
	}
}

// Every field can be set from the environment, nested ones and lists too.
func TestEveryFieldFromEnv(t *testing.T) {
	t.Parallel()
	s := defaults()
	env := []string{
		"SLUICE_REDIS_ADDR=r:1", "SLUICE_REDIS_CLUSTER_ADDRS=c1:1,c2:2", "SLUICE_REDIS_SENTINEL_MASTER=m",
		"SLUICE_REDIS_SENTINEL_ADDRS=s1:1,s2:2", "SLUICE_REDIS_SENTINEL_USERNAME=su", "SLUICE_REDIS_SENTINEL_PASSWORD=sp",
		"SLUICE_REDIS_USERNAME=u", "SLUICE_REDIS_PASSWORD=p", "SLUICE_REDIS_PASSWORD_FILE=/pf", "SLUICE_REDIS_DB=2",
		"SLUICE_REDIS_POOL_SIZE=7", "SLUICE_REDIS_MAX_RETRIES=-1", "SLUICE_REDIS_DIAL_TIMEOUT=2s",
		"SLUICE_REDIS_READ_TIMEOUT=3s", "SLUICE_REDIS_WRITE_TIMEOUT=4s", "SLUICE_REDIS_TLS_ENABLED=true",
		"SLUICE_REDIS_TLS_CA_FILE=/ca", "SLUICE_REDIS_TLS_CERT_FILE=/c", "SLUICE_REDIS_TLS_KEY_FILE=/k",
		"SLUICE_REDIS_TLS_SERVER_NAME=sn", "SLUICE_REDIS_TLS_INSECURE_SKIP_VERIFY=true",
		"SLUICE_NATS_URL=nats://n:1", "SLUICE_NATS_USER=nu", "SLUICE_NATS_PASSWORD=np", "SLUICE_NATS_TOKEN=nt",
		"SLUICE_NATS_NKEY_SEED_FILE=/nk", "SLUICE_NATS_CREDS_FILE=/nc", "SLUICE_NATS_TLS_ENABLED=true",
		"SLUICE_NATS_TLS_CA_FILE=/nca", "SLUICE_NATS_TLS_CERT_FILE=/ncert", "SLUICE_NATS_TLS_KEY_FILE=/nkey",
		"SLUICE_NATS_TLS_SERVER_NAME=nsn", "SLUICE_NATS_TLS_INSECURE_SKIP_VERIFY=true", "SLUICE_NATS_CONNECT_TIMEOUT=5s",
		"SLUICE_NATS_RECONNECT_WAIT=6s", "SLUICE_NATS_MAX_RECONNECTS=9", "SLUICE_NATS_RETRY_ON_FAILED_CONNECT=false",
		"SLUICE_REDIS_NAMESPACE=staging", "SLUICE_NATS_NAMESPACE=prod-eu",
	}
	if err := config.ApplyEnv(config.Prefix, env, &s); err != nil {
		t.Fatal(err)
	}
	want := section{
		Redis: Redis{Addr: "r:1", ClusterAddrs: []string{"c1:1", "c2:2"},
			Sentinel: Sentinel{Master: "m", Addrs: []string{"s1:1", "s2:2"}, Username: "su", Password: "sp"},
			Username: "u", Password: "p", PasswordFile: "/pf", DB: 2, PoolSize: 7, MaxRetries: -1,
			DialTimeout: 2 * time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 4 * time.Second,
			TLS:       TLSClient{Enabled: true, CAFile: "/ca", CertFile: "/c", KeyFile: "/k", ServerName: "sn", InsecureSkipVerify: true},
			Namespace: "staging"},
		NATS: NATS{URL: "nats://n:1", User: "nu", Password: "np", Token: "nt", NkeySeedFile: "/nk", CredsFile: "/nc",
			TLS:            TLSClient{Enabled: true, CAFile: "/nca", CertFile: "/ncert", KeyFile: "/nkey", ServerName: "nsn", InsecureSkipVerify: true},
			ConnectTimeout: 5 * time.Second, ReconnectWait: 6 * time.Second, MaxReconnects: 9, Namespace: "prod-eu"},
	}
	if got, w := fmtSection(s), fmtSection(want); got != w {
		t.Fatalf("from env:\n%s\nwant\n%s", got, w)
	}
	if n, w := len(config.Vars(config.Prefix, &s)), len(env); n != w {
		t.Fatalf("%d variables, the test sets %d: a field is not covered", n, w)
	}
}

func fmtSection(s section) string { return strings.ReplaceAll(fmtAny(s), ", ", ",") }

func fmtAny(v any) string { return fmt.Sprintf("%+v", v) }
