package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicegw/sluice/pkg/store"
)

// SyncChange is one object change of a SyncMessage.
type SyncChange struct {
	Kind    string `json:"kind"`
	Op      string `json:"op"`
	ID      string `json:"id"`
	Hash    string `json:"hash,omitempty"`
	OldHash string `json:"old_hash,omitempty"`
}

// SyncMessage is the JSON body of a message on <ns>.sync.<kind>: one
// config version and the changes it made (store.Version on the wire). It
// is an announcement for subscribers; gateway nodes read only its version
// (DecodeSyncHint) and take the changes from the store.
type SyncMessage struct {
	Version int64        `json:"version"`
	Changes []SyncChange `json:"changes"`
	// Truncated: the changes did not fit in one NATS message (a large
	// declarative apply) and were left out; read them from the changelog.
	Truncated bool `json:"truncated,omitempty"`
}

// NewSyncMessage converts a changelog version to its wire form.
func NewSyncMessage(v store.Version) SyncMessage {
	m := SyncMessage{Version: v.Version, Changes: make([]SyncChange, len(v.Changes))}
	for i, c := range v.Changes {
		m.Changes[i] = SyncChange{Kind: c.Kind, Op: c.Op, ID: c.ID, Hash: c.Hash, OldHash: c.OldHash}
	}
	return m
}

// Kind is the kind of the message's first change: the subject suffix it is
// published under ("api" when there are no changes).
func (m SyncMessage) Kind() string {
	if len(m.Changes) == 0 {
		return store.KindAPI
	}
	return m.Changes[0].Kind
}

// DecodeSyncMessage parses and checks a sync message.
func DecodeSyncMessage(data []byte) (SyncMessage, error) {
	var m SyncMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("sync message: %w", err)
	}
	if m.Version <= 0 {
		return m, errors.New("sync message: version must be positive")
	}
	return m, nil
}

// Heartbeat is the JSON body of a message on <ns>.nodes.<node-id>.
type Heartbeat struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	// Version is the Sluice build version of the node.
	Version string `json:"version"`
	// ConfigVersion is the config version the node has applied.
	ConfigVersion int64     `json:"config_version"`
	StartedAt     time.Time `json:"started_at"`
	SentAt        time.Time `json:"sent_at"`
}

// DecodeSyncHint reads only the version of a sync message: all a gateway
// node takes from one. A node treats it as a hint ("the config may have
// changed, up to this version") and applies what the store's changelog
// holds, never the message's changes (docs/sync.md).
func DecodeSyncHint(data []byte) (int64, error) {
	var m struct {
		Version *int64 `json:"version"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return 0, fmt.Errorf("sync message: %w", err)
	}
	if m.Version == nil || *m.Version <= 0 {
		return 0, errors.New("sync message: version must be positive")
	}
	return *m.Version, nil
}

// Heartbeat bounds. Any party allowed to publish on <ns>.nodes.> can
// send heartbeats (docs/security.md: NATS permissions); these bounds keep
// what the syncer holds for each small.
const (
	MaxHeartbeatBytes  = 4096
	MaxNodeIDLen       = 128
	MaxAddressLen      = 256
	MaxBuildVersionLen = 64
)

// ValidNodeID reports whether id can name a node: 1 to MaxNodeIDLen
// printable ASCII characters without '.', '*', '>' or spaces (it is one
// NATS subject token).
func ValidNodeID(id string) bool {
	if id == "" || len(id) > MaxNodeIDLen || strings.ContainsAny(id, ".*>") {
		return false
	}
	return printable(id)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// DecodeHeartbeat parses and checks a heartbeat: size, a valid node id,
// bounded printable address and build version, a config version not
// below zero.
func DecodeHeartbeat(data []byte) (Heartbeat, error) {
	var h Heartbeat
	if len(data) > MaxHeartbeatBytes {
		return h, fmt.Errorf("heartbeat: %d bytes, more than %d", len(data), MaxHeartbeatBytes)
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return h, fmt.Errorf("heartbeat: %w", err)
	}
	switch {
	case h.ID == "":
		return h, errors.New("heartbeat: id is required")
	case !ValidNodeID(h.ID):
		return h, fmt.Errorf("heartbeat: id must be 1 to %d printable characters without '.', '*', '>' or spaces", MaxNodeIDLen)
	case len(h.Address) > MaxAddressLen || (h.Address != "" && !printable(h.Address)):
		return h, fmt.Errorf("heartbeat: address must be at most %d printable characters", MaxAddressLen)
	case len(h.Version) > MaxBuildVersionLen || (h.Version != "" && !printable(h.Version)):
		return h, fmt.Errorf("heartbeat: version must be at most %d printable characters", MaxBuildVersionLen)
	case h.ConfigVersion < 0:
		return h, errors.New("heartbeat: config_version must not be negative")
	}
	return h, nil
}
