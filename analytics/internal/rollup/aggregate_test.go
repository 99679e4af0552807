package rollup

import (
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/usage"
)

// TestBuildSumsUnits checks that a batch's units are summed per API, key,
// endpoint and minute, and that the key names of its events are kept.
func TestBuildSumsUnits(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1700000040, 0) // a minute start
	evs := []usage.Event{
		{ID: "a", Time: t0.UnixNano(), KeyHash: "h1", KeyID: "k1", KeyAlias: "acme", Endpoint: "/chat", Status: 200, Units: 1200},
		{ID: "b", Time: t0.Add(30 * time.Second).UnixNano(), KeyHash: "h1", KeyID: "k1", KeyAlias: "acme", Endpoint: "/embed", Status: 200, Units: 7},
		{ID: "c", Time: t0.Add(time.Minute).UnixNano(), KeyHash: "h2", KeyID: "k2", Endpoint: "/chat", Status: 200, Units: 300},
		{ID: "d", Time: t0.Add(time.Minute).UnixNano(), KeyHash: "h2", KeyID: "k2", Endpoint: "/chat", Status: 429, Limited: "rate"},
	}
	var data []byte
	for i := range evs {
		data = usage.AppendJSON(data, &evs[i])
	}
	b := Build("llm", [][]byte{data}, []int{0})
	if len(b.Bad) != 0 {
		t.Fatal(b.BadErrs)
	}
	m0, m1 := b.Minutes[t0.UnixMilli()], b.Minutes[t0.UnixMilli()+MinuteMS]
	checks := []struct {
		name string
		got  int64
		want int64
	}{
		{"total", b.Total[FUnits], 1507},
		{"minute 0 api", m0.API[FUnits], 1207},
		{"minute 0 key h1", m0.Keys["h1"][FUnits], 1207},
		{"minute 0 endpoint /chat", m0.Endpoints["/chat"][FUnits], 1200},
		{"minute 0 endpoint /embed", m0.Endpoints["/embed"][FUnits], 7},
		{"minute 1 key h2", m1.Keys["h2"][FUnits], 300},
		{"minute 1 requests", m1.API[FRequests], 2},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %d units, want %d", c.name, c.got, c.want)
		}
	}
	if n := b.Names["h1"]; n != (KeyName{ID: "k1", Alias: "acme"}) {
		t.Errorf("name of h1: %+v", n)
	}
	if n := b.Names["h2"]; n != (KeyName{ID: "k2"}) {
		t.Errorf("name of h2: %+v", n)
	}
	if p := PointOf(t0, &b.Total); p.Units != 1507 {
		t.Errorf("point units %d", p.Units)
	}
}
