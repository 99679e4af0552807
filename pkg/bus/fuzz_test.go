package bus_test

import (
	"testing"

	"github.com/sluicegw/sluice/pkg/bus"
)

// FuzzDecodeHeartbeat: any bytes on sluice.nodes.> either fail to decode
// or give a heartbeat within every bound; decoding never panics.
func FuzzDecodeHeartbeat(f *testing.F) {
	f.Add([]byte(`{"id":"gw-1","address":":8080","version":"v1","config_version":3,"started_at":"2030-01-02T15:04:05Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		hb, err := bus.DecodeHeartbeat(data)
		if err != nil {
			return
		}
		if !bus.ValidNodeID(hb.ID) || len(hb.Address) > bus.MaxAddressLen || len(hb.Version) > bus.MaxBuildVersionLen ||
			hb.ConfigVersion < 0 || len(data) > bus.MaxHeartbeatBytes {
			t.Fatalf("accepted out of bounds: %+v from %q", hb, data)
		}
	})
}

// FuzzDecodeSyncHint: any bytes on sluice.sync.> either fail to decode or
// give a positive version; decoding never panics.
func FuzzDecodeSyncHint(f *testing.F) {
	f.Add([]byte(`{"version":42,"changes":[{"kind":"key","op":"put","id":"k","hash":"aa"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := bus.DecodeSyncHint(data)
		if err == nil && v <= 0 {
			t.Fatalf("accepted version %d from %q", v, data)
		}
	})
}
