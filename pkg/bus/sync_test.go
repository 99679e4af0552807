package bus_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/store"
)

func TestSyncMessageRoundTrip(t *testing.T) {
	t.Parallel()
	v := store.Version{Version: 7, Changes: []store.Entry{{Kind: "key", Op: "put", ID: "k1", Hash: "aa", OldHash: "bb"}}}
	b, err := json.Marshal(bus.NewSyncMessage(v))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":7,"changes":[{"kind":"key","op":"put","id":"k1","hash":"aa","old_hash":"bb"}]}`
	if string(b) != want {
		t.Fatalf("encoded %s, want %s", b, want)
	}
	m, err := bus.DecodeSyncMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	want2 := bus.SyncMessage{Version: 7, Changes: []bus.SyncChange{{Kind: "key", Op: "put", ID: "k1", Hash: "aa", OldHash: "bb"}}}
	if !reflect.DeepEqual(m, want2) || m.Kind() != "key" {
		t.Fatalf("decoded %+v kind %q", m, m.Kind())
	}
	if h, err := bus.DecodeSyncHint(b); err != nil || h != 7 {
		t.Fatalf("DecodeSyncHint = %d, %v; want 7", h, err)
	}
}

func TestDecodeRejectsBadMessages(t *testing.T) {
	t.Parallel()
	for _, in := range []string{``, `{`, `{"version":0}`, `{"version":-1}`, `[]`} {
		if _, err := bus.DecodeSyncMessage([]byte(in)); err == nil {
			t.Errorf("DecodeSyncMessage(%q) = nil error", in)
		}
	}
	for _, in := range []string{``, `{`, `{}`, `{"version":0}`, `{"version":-3}`, `{"version":"7"}`, `[]`, `null`} {
		if _, err := bus.DecodeSyncHint([]byte(in)); err == nil {
			t.Errorf("DecodeSyncHint(%q) = nil error", in)
		}
	}
}

func TestDecodeHeartbeat(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"valid", `{"id":"gw-1","address":":8080","version":"v1.0.0","config_version":3}`, true},
		{"longest fields", `{"id":"` + long(bus.MaxNodeIDLen) + `","address":"` + long(bus.MaxAddressLen) + `","version":"` + long(bus.MaxBuildVersionLen) + `"}`, true},
		{"empty", ``, false},
		{"no id", `{}`, false},
		{"id not a string", `{"id":1}`, false},
		{"id with a dot", `{"id":"a.b"}`, false},
		{"id with a wildcard", `{"id":">"}`, false},
		{"id with a space", `{"id":"a b"}`, false},
		{"id with a control character", `{"id":"a\u0007"}`, false},
		{"id too long", `{"id":"` + long(bus.MaxNodeIDLen+1) + `"}`, false},
		{"address too long", `{"id":"a","address":"` + long(bus.MaxAddressLen+1) + `"}`, false},
		{"address with a newline", `{"id":"a","address":"a\nb"}`, false},
		{"version too long", `{"id":"a","version":"` + long(bus.MaxBuildVersionLen+1) + `"}`, false},
		{"negative config version", `{"id":"a","config_version":-1}`, false},
		{"too large", `{"id":"a","pad":"` + long(bus.MaxHeartbeatBytes) + `"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := bus.DecodeHeartbeat([]byte(tt.in))
			if (err == nil) != tt.ok {
				t.Fatalf("DecodeHeartbeat: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
