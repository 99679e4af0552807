package bus_test

import (
	"encoding/json"
	"reflect"
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
	if got := m.StoreVersion(); !reflect.DeepEqual(got, v) || m.Kind() != "key" {
		t.Fatalf("decoded %+v kind %q", got, m.Kind())
	}
}

func TestDecodeRejectsBadMessages(t *testing.T) {
	t.Parallel()
	for _, in := range []string{``, `{`, `{"version":0}`, `{"version":-1}`, `[]`} {
		if _, err := bus.DecodeSyncMessage([]byte(in)); err == nil {
			t.Errorf("DecodeSyncMessage(%q) = nil error", in)
		}
	}
	for _, in := range []string{``, `{}`, `{"id":1}`} {
		if _, err := bus.DecodeHeartbeat([]byte(in)); err == nil {
			t.Errorf("DecodeHeartbeat(%q) = nil error", in)
		}
	}
}
