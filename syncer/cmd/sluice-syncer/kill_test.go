package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// killable is one syncer process the test kills itself.
type killable struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
	logs bytes.Buffer
}

func startKillable(t *testing.T, bin, redisAddr, natsURL string) *killable {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	k := &killable{cmd: exec.Command(bin, "--listen", addr), url: "http://" + addr, done: make(chan struct{})}
	k.cmd.Env = append(os.Environ(), "SLUICE_ADMIN_TOKEN="+concurrentToken, "SLUICE_REDIS_ADDR="+redisAddr,
		"SLUICE_NATS_URL="+natsURL, "SLUICE_LOG_LEVEL=warn", "SLUICE_LOG_FORMAT=json")
	k.cmd.Stdout, k.cmd.Stderr = &k.logs, &k.logs
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = k.cmd.Wait(); close(k.done) }()
	t.Cleanup(k.kill)
	testutil.WaitFor(t, 30*time.Second, func() error {
		select {
		case <-k.done:
			t.Fatalf("syncer exited: %s", k.logs.String())
		default:
		}
		res, err := http.Get(k.url + "/ready")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("ready: %d", res.StatusCode)
		}
		return nil
	})
	return k
}

func (k *killable) kill() {
	_ = k.cmd.Process.Signal(syscall.SIGKILL)
	<-k.done
}

// declaredKey is a key of POST /v1/apply: its settings and hash.
type declaredKey struct {
	ID       string   `json:"id"`
	Policies []string `json:"policies"`
	Hash     string   `json:"hash"`
}

// keyValue is the value of key i in round: every round rotates every key.
func keyValue(round, i int) string { return fmt.Sprintf("kill-test-key-%d-%d", round, i) }

// desired is a configuration of n APIs, n policies and n keys; each round
// moves every API to other listen paths, changes every policy's rate and
// rotates every key.
func desired(round, n int) string {
	type file struct {
		APIs     []model.API    `json:"apis"`
		Policies []model.Policy `json:"policies"`
		Keys     []declaredKey  `json:"keys"`
		Prune    bool           `json:"prune"`
	}
	f := file{Prune: true}
	for i := range n {
		id := fmt.Sprintf("api-%04d", i)
		f.APIs = append(f.APIs, model.API{ID: id, ListenPath: fmt.Sprintf("/r%d/a%04d/", round, i),
			Upstream: model.Upstream{Targets: []string{"http://127.0.0.1:1"}}, Auth: model.Auth{Mode: model.AuthAPIKey}})
		f.Policies = append(f.Policies, model.Policy{ID: fmt.Sprintf("pol-%04d", i), Access: []model.AccessRight{{API: id}},
			RateLimit: &model.Limit{Rate: int64(round + 1), Per: model.Duration(time.Second)}})
		f.Keys = append(f.Keys, declaredKey{ID: fmt.Sprintf("key-%04d", i), Policies: []string{fmt.Sprintf("pol-%04d", i)},
			Hash: model.HashKey([]byte(keyValue(round, i)))})
	}
	b, _ := json.Marshal(f)
	return string(b)
}

// TestKillMidApplyIsAllOrNothing sends applies of 3,000 objects (APIs,
// policies and keys) to real
// syncer processes and SIGKILLs each one at a different moment of its
// apply. Afterwards the store holds either the whole new configuration
// (one version more) or the whole previous one (same version), never a
// mix.
func TestKillMidApplyIsAllOrNothing(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	n := testutil.StartNATS(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), ClientName: "kill-test"})
	t.Cleanup(func() { _ = rdb.Close() })
	st := store.New(rdb, 0)
	bin := filepath.Join(t.TempDir(), "sluice-syncer")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	const objects = 1000
	// Round 0 is applied in full; its duration spreads the kills of the
	// next rounds over the whole of an apply.
	k := startKillable(t, bin, r.Addr(), n.URL())
	start := time.Now()
	if s := send(t, "POST", k.url+"/v1/apply", desired(0, objects)); s != 200 {
		t.Fatalf("first apply: %d", s)
	}
	full := time.Since(start)
	k.kill()
	applied := 0 // the last round whose configuration is stored
	const rounds = 10
	outcomes := map[string]int{}
	for round := 1; round <= rounds; round++ {
		before, err := st.Version(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		k := startKillable(t, bin, r.Addr(), n.URL())
		body := desired(round, objects)
		go func() {
			req, _ := http.NewRequest("POST", k.url+"/v1/apply", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+concurrentToken)
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		}()
		delay := full * time.Duration(round) / rounds * 3 / 2
		select {
		case <-time.After(delay):
		case <-k.done:
		}
		k.kill()
		// Once Redis has closed the dead process's connections it has run
		// or dropped everything the process sent.
		testutil.WaitFor(t, 10*time.Second, func() error {
			list, err := rdb.ClientList(context.Background()).Result()
			if err != nil {
				return err
			}
			for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
				if !strings.Contains(line, " name=kill-test ") {
					return fmt.Errorf("a client of the killed syncer is still connected: %s", line)
				}
			}
			return nil
		})
		after, err := st.Version(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		switch after {
		case before:
			outcomes["nothing"]++
		case before + 1:
			outcomes["everything"]++
			applied = round
		default:
			t.Fatalf("round %d: version %d -> %d: the apply was not one write", round, before, after)
		}
		checkRound(t, st, applied, objects)
	}
	t.Logf("kills over %d rounds (full apply %v): %v", rounds, full, outcomes)
}

// checkRound checks the store holds exactly the configuration of round.
func checkRound(t *testing.T, st *store.Store, round, n int) {
	t.Helper()
	snap, err := st.LoadSnapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.APIs) != n || len(snap.Policies) != n {
		t.Fatalf("store holds %d APIs and %d policies, want %d of each", len(snap.APIs), len(snap.Policies), n)
	}
	prefix := fmt.Sprintf("/r%d/", round)
	for _, a := range snap.APIs {
		if !strings.HasPrefix(a.ListenPath, prefix) {
			t.Fatalf("API %s listens on %s, not under %s: a partial apply", a.ID, a.ListenPath, prefix)
		}
	}
	for _, p := range snap.Policies {
		if p.RateLimit == nil || p.RateLimit.Rate != int64(round+1) {
			t.Fatalf("policy %s has rate %+v, want %d: a partial apply", p.ID, p.RateLimit, round+1)
		}
	}
	ctx := context.Background()
	ids, err := st.Client().HGetAll(ctx, st.Layout().KeyIDs()).Result()
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.Client().HLen(ctx, st.Layout().Keys()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != n || stored != int64(n) {
		t.Fatalf("store holds %d key ids and %d keys, want %d: a partial apply", len(ids), stored, n)
	}
	for i := range n {
		id := fmt.Sprintf("key-%04d", i)
		if ids[id] != model.HashKey([]byte(keyValue(round, i))) {
			t.Fatalf("key %s holds the value of another round than %d: a partial apply", id, round)
		}
	}
}
