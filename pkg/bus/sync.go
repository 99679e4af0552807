package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sluicegw/sluice/pkg/store"
)

// SyncSubject returns the subject a change of kind ("api", "policy", "key")
// is announced on.
func SyncSubject(kind string) string { return SyncPrefix + kind }

// NodeSubject returns the heartbeat subject of a gateway node.
func NodeSubject(nodeID string) string { return NodesPrefix + nodeID }

// SyncChange is one object change of a SyncMessage.
type SyncChange struct {
	Kind    string `json:"kind"`
	Op      string `json:"op"`
	ID      string `json:"id"`
	Hash    string `json:"hash,omitempty"`
	OldHash string `json:"old_hash,omitempty"`
}

// SyncMessage is the JSON body of a message on sluice.sync.<kind>: one
// config version and the changes it made (store.Version on the wire).
type SyncMessage struct {
	Version int64        `json:"version"`
	Changes []SyncChange `json:"changes"`
}

// NewSyncMessage converts a changelog version to its wire form.
func NewSyncMessage(v store.Version) SyncMessage {
	m := SyncMessage{Version: v.Version, Changes: make([]SyncChange, len(v.Changes))}
	for i, c := range v.Changes {
		m.Changes[i] = SyncChange{Kind: c.Kind, Op: c.Op, ID: c.ID, Hash: c.Hash, OldHash: c.OldHash}
	}
	return m
}

// StoreVersion converts the message back to a changelog version.
func (m SyncMessage) StoreVersion() store.Version {
	v := store.Version{Version: m.Version, Changes: make([]store.Entry, len(m.Changes))}
	for i, c := range m.Changes {
		v.Changes[i] = store.Entry{Kind: c.Kind, Op: c.Op, ID: c.ID, Hash: c.Hash, OldHash: c.OldHash}
	}
	return v
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

// Heartbeat is the JSON body of a message on sluice.nodes.<node-id>.
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

// DecodeHeartbeat parses and checks a heartbeat.
func DecodeHeartbeat(data []byte) (Heartbeat, error) {
	var h Heartbeat
	if err := json.Unmarshal(data, &h); err != nil {
		return h, fmt.Errorf("heartbeat: %w", err)
	}
	if h.ID == "" {
		return h, errors.New("heartbeat: id is required")
	}
	return h, nil
}
