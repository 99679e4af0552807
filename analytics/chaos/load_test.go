//go:build chaos

package chaos

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// kind is one stream of the load.
type kind int

const (
	kindHammer kind = iota // the hammered key on the open API, above its limit
	kindOpen               // a roomy key on the open (fail-open) API
	kindClosed             // a roomy key on the closed (fail-closed) API
	numKinds
)

func (k kind) String() string { return [...]string{"hammer", "open", "closed"}[k] }

// shot is what one request of a kind sends.
func (k kind) shot() (path, key string) {
	switch k {
	case kindHammer:
		return "/open/ok", hammerKey
	case kindOpen:
		return "/open/ok", openKey
	default:
		return "/closed/ok", closedKey
	}
}

// rates are the requests per second of each kind, over all gateways
// together: the hammered key gets 2.5 times its limit.
var rates = [numKinds]int{kindHammer: 250, kindOpen: 60, kindClosed: 60}

// maxInFlight bounds the requests waiting for an answer; a tick that finds
// it reached is skipped and counted, so a frozen gateway cannot pile up
// goroutines.
const maxInFlight = 256

// record is one request as the client saw it. Status 0 is no answer (a
// connection refused or reset, or the client's timeout).
type record struct {
	kind       kind
	gw         int
	start, end time.Time
	status     int
}

// load sends each kind at its rate, round robin over the gateways, until
// its context ends.
type load struct {
	tp       *topology
	client   *http.Client
	inFlight atomic.Int64
	skipped  atomic.Int64
	wg       sync.WaitGroup

	mu      sync.Mutex
	records []record
}

func newLoad(tp *topology) *load {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	tp.t.Cleanup(tr.CloseIdleConnections)
	return &load{tp: tp, client: &http.Client{Transport: tr, Timeout: 3 * time.Second}}
}

// run sends until ctx ends, then waits for every answer.
func (l *load) run(ctx context.Context) {
	var senders sync.WaitGroup
	for k := range numKinds {
		senders.Add(1)
		go func() {
			defer senders.Done()
			tick := time.NewTicker(time.Second / time.Duration(rates[k]))
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if l.inFlight.Load() >= maxInFlight {
					l.skipped.Add(1)
					continue
				}
				l.inFlight.Add(1)
				l.wg.Add(1)
				go l.send(k, i%len(l.tp.gateways))
			}
		}()
	}
	senders.Wait()
	l.wg.Wait()
}

func (l *load) send(k kind, gw int) {
	defer l.wg.Done()
	defer l.inFlight.Add(-1)
	path, key := k.shot()
	r := record{kind: k, gw: gw, start: time.Now()}
	req, _ := http.NewRequest(http.MethodGet, "http://"+l.tp.gateways[gw].addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := l.client.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil {
			r.status = resp.StatusCode
		}
	}
	r.end = time.Now()
	l.mu.Lock()
	l.records = append(l.records, r)
	l.mu.Unlock()
}

// result is every record once run has returned.
func (l *load) result() []record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]record(nil), l.records...)
}
