//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/sluicegw/sluice/pkg/testutil"
)

// metric sums the samples of the Prometheus metric name at addr/metrics.
func metric(addr, name string) (float64, error) {
	data, err := get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	sum, found, err := testutil.SumMetric(data, name)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("metric %s not served by %s", name, addr)
	}
	return sum, nil
}

// counted is the requests of api the analytics query API reports.
func (w *workerProc) counted(api string) (int64, error) {
	data, err := get("http://" + w.addr + "/v1/usage/totals?api=" + url.QueryEscape(api))
	if err != nil {
		return 0, err
	}
	var body struct {
		Requests int64 `json:"requests"`
	}
	if err := json.Unmarshal(data, &body); err != nil {
		return 0, fmt.Errorf("usage totals of %s: %w", api, err)
	}
	return body.Requests, nil
}

// usageToken is the analytics workers' auth.token.
const usageToken = "chaos-usage-token-0123456789"

func get(u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+usageToken) // the workers' query API; ignored elsewhere
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, data)
	}
	return data, nil
}
