package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

const concurrentToken = "concurrent-admin-token-0123456789"

// startSyncers builds sluice-syncer and runs n processes against one Redis
// and one NATS; it returns their base URLs.
func startSyncers(t *testing.T, n int, redisAddr, natsURL string, env ...string) []string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sluice-syncer")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	urls := make([]string, n)
	for i := range urls {
		addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
		cmd := exec.Command(bin, "--listen", addr)
		cmd.Env = append(os.Environ(), "SLUICE_ADMIN_TOKEN="+concurrentToken, "SLUICE_REDIS_ADDR="+redisAddr,
			"SLUICE_NATS_URL="+natsURL, "SLUICE_LOG_LEVEL=warn", "SLUICE_LOG_FORMAT=json")
		cmd.Env = append(cmd.Env, env...)
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
		urls[i] = "http://" + addr
		testutil.WaitFor(t, 30*time.Second, func() error {
			select {
			case <-done:
				t.Fatalf("syncer %d exited: %s", i, logs.String())
			default:
			}
			res, err := http.Get(urls[i] + "/ready")
			if err != nil {
				return err
			}
			res.Body.Close()
			if res.StatusCode != 200 {
				return fmt.Errorf("ready: %d", res.StatusCode)
			}
			return nil
		})
	}
	return urls
}

// send makes one admin request and returns its status.
func send(t *testing.T, method, url, body string) int {
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+concurrentToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

// hammer runs each request on its own goroutine, started together, spread
// over the syncers; it returns the statuses in request order.
func hammer(t *testing.T, urls []string, reqs [][3]string) []int {
	statuses := make([]int, len(reqs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i] = send(t, r[0], urls[i%len(urls)]+r[1], r[2])
		}()
	}
	close(start)
	wg.Wait()
	return statuses
}

func apiBody(id, listen string) string {
	return fmt.Sprintf(`{"id":%q,"listen_path":%q,"upstream":{"targets":["http://127.0.0.1:1"]},"auth":{"mode":"api_key"}}`, id, listen)
}

// TestTwoSyncersKeepCrossObjectRules races conflicting writes through two
// real syncer processes: creates of one listen path under different ids,
// and deletes of an API against creates of policies and keys granting it.
// Exactly one create wins each path, and the stored state never holds a
// listen-path clash or a policy granting a missing API.
func TestTwoSyncersKeepCrossObjectRules(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	n := testutil.StartNATS(t)
	urls := startSyncers(t, 2, r.Addr(), n.URL())
	const rounds, writers, deleters = 40, 8, 4
	for round := range rounds {
		path := fmt.Sprintf("/r%d/", round)
		target := fmt.Sprintf("t%d", round)
		if s := send(t, "POST", urls[0]+"/v1/apis", apiBody(target, "/target"+strconv.Itoa(round)+"/")); s != 201 {
			t.Fatalf("create %s: %d", target, s)
		}
		var reqs [][3]string
		for w := range writers {
			reqs = append(reqs, [3]string{"POST", "/v1/apis", apiBody(fmt.Sprintf("r%d-w%d", round, w), path)})
		}
		for range deleters {
			reqs = append(reqs, [3]string{"DELETE", "/v1/apis/" + target, ""})
		}
		for w := range writers {
			reqs = append(reqs, [3]string{"POST", "/v1/policies", fmt.Sprintf(`{"id":"p%d-%d","access":[{"api":%q}]}`, round, w, target)})
		}
		statuses := hammer(t, urls, reqs)
		created := 0
		for i, s := range statuses[:writers] {
			switch s {
			case 201:
				created++
			case 400: // the clash, refused before or inside the write
			default:
				t.Fatalf("round %d: create %d answered %d", round, i, s)
			}
		}
		if created != 1 {
			t.Fatalf("round %d: %d APIs created on %s, want exactly 1", round, created, path)
		}
		deleted := false
		for _, s := range statuses[writers : writers+deleters] {
			switch s {
			case 204:
				deleted = true
			case 404, 409: // deleted by another request, or granted by a policy
			default:
				t.Fatalf("round %d: delete answered %d", round, s)
			}
		}
		for _, s := range statuses[writers+deleters:] {
			if s != 201 && s != 400 {
				t.Fatalf("round %d: policy create answered %d", round, s)
			}
			if s == 201 && deleted {
				t.Fatalf("round %d: API deleted and a policy granting it created", round)
			}
		}
	}
	checkStored(t, r)
}

// checkStored reads the stored APIs and policies from Redis and fails on a
// listen-path clash or a policy granting a missing API.
func checkStored(t *testing.T, r *testutil.Redis) {
	t.Helper()
	snap, err := store.New(r.Client(t), 0).LoadSnapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if clashes := model.ListenPathClashes(snap.APIs); len(clashes) > 0 {
		t.Fatalf("stored APIs clash: %v", clashes)
	}
	apis := map[string]bool{}
	for _, a := range snap.APIs {
		apis[a.ID] = true
	}
	for _, p := range snap.Policies {
		for _, ar := range p.Access {
			if !apis[ar.API] {
				b, _ := json.Marshal(p)
				t.Fatalf("policy grants the missing API %s: %s", ar.API, b)
			}
		}
	}
}
