package follower

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// TestEndToEnd runs a real sluice-syncer and three real sluice-gateway
// processes: an API and a key created through the admin API are served by
// every node; a revoked key is refused by every node; a lowered limit is
// enforced by every node. The periodic check is an hour, so every change
// arrives through NATS.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	t.Parallel()
	c := newCluster(t, 0)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	t.Cleanup(upstream.Close)
	s := c.startSyncer()
	s.do(201, "POST", "/v1/apis", `{"id":"orders","listen_path":"/orders/","upstream":{"targets":["`+upstream.URL+`"]},"auth":{"mode":"api_key"}}`)
	s.do(201, "POST", "/v1/policies", `{"id":"gold","access":[{"api":"orders"}],"rate_limit":{"rate":1000,"per":"1s"}}`)
	key := func() string {
		_, body := s.do(201, "POST", "/v1/keys", `{"policies":["gold"]}`)
		var k struct{ Key string }
		if err := json.Unmarshal(body, &k); err != nil || k.Key == "" {
			t.Fatalf("created key: %s", body)
		}
		return k.Key
	}
	k1, k2 := key(), key()

	var gateways []string
	for i := range 3 {
		listen := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
		ops := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
		c.run("github.com/sluicegw/sluice/gateway/cmd/sluice-gateway", "http://"+ops+"/ready", "--listen", listen, "--ops-listen", ops)
		gateways = append(gateways, "http://"+listen)
		_ = i
	}
	waitConverged(t, s, 3)

	call := func(gw, key string) int {
		req, _ := http.NewRequest("GET", gw+"/orders/list", nil)
		req.Header.Set("X-API-Key", key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, gw := range gateways {
		if code := call(gw, k1); code != 200 {
			t.Fatalf("%s with a valid key: %d", gw, code)
		}
	}

	// Revoke k1: every node refuses it (its cached session is evicted).
	s.do(204, "DELETE", "/v1/keys/"+keyID(t, s, k1), "")
	for _, gw := range gateways {
		testutil.WaitFor(t, 5*time.Second, func() error {
			if code := call(gw, k1); code != 401 {
				return fmt.Errorf("%s still answers %d to a revoked key", gw, code)
			}
			return nil
		})
	}

	// Lower the policy's limit to one request a minute: across the three
	// nodes, k2 gets at most one more request.
	for _, gw := range gateways {
		if code := call(gw, k2); code != 200 {
			t.Fatalf("%s before lowering the limit: %d", gw, code)
		}
	}
	s.do(200, "PUT", "/v1/policies/gold", `{"access":[{"api":"orders"}],"rate_limit":{"rate":1,"per":"1m"}}`)
	waitConverged(t, s, 3)
	allowed := 0
	for range 2 {
		for _, gw := range gateways {
			switch code := call(gw, k2); code {
			case 200:
				allowed++
			case 429:
			default:
				t.Fatalf("%s: %d", gw, code)
			}
		}
	}
	if allowed > 1 {
		t.Fatalf("%d requests allowed after lowering the limit to 1/min, want at most 1", allowed)
	}
}

// waitConverged waits for /v1/status to show n live nodes, all converged.
func waitConverged(t *testing.T, s *syncer, n int) {
	t.Helper()
	testutil.WaitFor(t, 15*time.Second, func() error {
		_, body := s.do(200, "GET", "/v1/status", "")
		var st struct {
			NodesLive int  `json:"nodes_live"`
			Converged bool `json:"converged"`
		}
		if err := json.Unmarshal(body, &st); err != nil {
			return err
		}
		if st.NodesLive != n || !st.Converged {
			return fmt.Errorf("status %s", body)
		}
		return nil
	})
}

// keyID finds the id of the key whose clear value is clear.
func keyID(t *testing.T, s *syncer, clear string) string {
	t.Helper()
	_, body := s.do(200, "GET", "/v1/keys?limit=1000", "")
	var page struct {
		Items []struct{ ID, Hash string }
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	for _, k := range page.Items {
		if k.Hash == hashOf(clear) {
			return k.ID
		}
	}
	t.Fatalf("no key with that value")
	return ""
}

func hashOf(clear string) string { return model.HashKey([]byte(clear)) }
