package rollup

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"

	"github.com/sluicegw/sluice/pkg/usage"
)

// MinuteMS is one bucket, in milliseconds.
const MinuteMS = 60_000

// NoName stands for an empty key hash (keyless request) or an empty
// endpoint (no endpoint matched) in bucket and stream names.
const NoName = "-"

// OtherKey names the sum of the keys that made too few requests in a
// minute to keep that minute on their own (aggregation.
// key_minute_min_requests): their minute usage is kept under it, their
// usage per key in their hours.
const OtherKey = "~other"

// Minute is the aggregate of one API in one minute, by dimension.
type Minute struct {
	API       Counters
	Keys      map[string]*Counters
	Endpoints map[string]*Counters
}

// APIBatch is the pre-summed aggregate of the messages of one API in one
// fetched batch: what one script call adds to Redis.
type APIBatch struct {
	API string
	// Msgs are the indexes of the messages it holds, IDs their identities
	// (see Identity), in the same order.
	Msgs []int
	IDs  []string
	// Done are messages already recorded (duplicates), to acknowledge.
	Done []int
	// Repeated counts the events of messages left out because an earlier
	// message of the batch had the same identity.
	Repeated int64
	// Bad are the indexes of messages that could not be decoded (left out).
	Bad     []int
	BadErrs []error
	Events  int64
	Total   Counters
	Minutes map[int64]*Minute
	// Names are the key id and alias the events gave each key hash (the
	// last event's), for keys whose events named them.
	Names map[string]KeyName
}

// KeyName is what names a key hash in the query API and the dashboard:
// the key record's id and alias (usage event fields key_id, key_alias).
type KeyName struct {
	ID    string `json:"id,omitempty"`
	Alias string `json:"alias,omitempty"`
}

// MinuteOf returns the start of the minute of a Unix nanosecond time, in
// Unix milliseconds.
func MinuteOf(ns int64) int64 {
	m := ns / 60e9
	if ns < 0 && ns%60e9 != 0 {
		m--
	}
	return m * MinuteMS
}

// Build aggregates the messages data[i] for i in idx, all of API api, into
// their minutes, whatever the time: whether a minute is still open or
// closed already (a late event, recorded as a correction) is decided in
// Redis, against the API's watermark (store.Apply). A message that does not
// decode is left out whole and reported in Bad; a message with the identity
// of an earlier one in idx is left out and listed in Done.
func Build(api string, data [][]byte, idx []int) *APIBatch {
	h := sha256.New()
	var skip, bad, done []int
	var badErrs []error
	var repeated int64
	for {
		b, failed, n, err := build(api, data, idx, h, skip)
		switch {
		case err == errRepeated:
			done = append(done, failed)
			repeated += n
		case err != nil:
			bad = append(bad, failed)
			badErrs = append(badErrs, err)
		default:
			b.Bad, b.BadErrs, b.Done, b.Repeated = bad, badErrs, done, repeated
			return b
		}
		skip = append(skip, failed)
	}
}

var errRepeated = errors.New("repeated message")

func build(api string, data [][]byte, idx []int, h hash.Hash, skip []int) (*APIBatch, int, int64, error) {
	b := &APIBatch{API: api, Minutes: make(map[int64]*Minute, 2)}
	var sum [sha256.Size]byte
	for _, i := range idx {
		if contains(skip, i) {
			continue
		}
		h.Reset()
		var n int64
		err := usage.ScanBatch(data[i], func(ev *usage.EventView) error {
			n++
			h.Write(ev.ID)
			h.Write([]byte{'\n'})
			b.add(ev)
			return nil
		})
		if err != nil {
			return nil, i, 0, err
		}
		id := hex.EncodeToString(h.Sum(sum[:0])[:16])
		for _, seen := range b.IDs {
			if seen == id {
				return nil, i, n, errRepeated
			}
		}
		b.Events += n
		b.Msgs = append(b.Msgs, i)
		b.IDs = append(b.IDs, id)
	}
	return b, 0, 0, nil
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (b *APIBatch) add(ev *usage.EventView) {
	b.Total.AddEvent(ev)
	m := MinuteOf(ev.Time)
	mb := b.Minutes[m]
	if mb == nil {
		mb = &Minute{Keys: map[string]*Counters{}, Endpoints: map[string]*Counters{}}
		b.Minutes[m] = mb
	}
	mb.API.AddEvent(ev)
	counterOf(mb.Keys, ev.KeyHash).AddEvent(ev)
	counterOf(mb.Endpoints, ev.Endpoint).AddEvent(ev)
	if len(ev.KeyHash) > 0 && (len(ev.KeyID) > 0 || len(ev.KeyAlias) > 0) {
		n := KeyName{ID: string(ev.KeyID), Alias: string(ev.KeyAlias)}
		if b.Names[string(ev.KeyHash)] != n {
			if b.Names == nil {
				b.Names = map[string]KeyName{}
			}
			b.Names[string(ev.KeyHash)] = n
		}
	}
}

func counterOf(m map[string]*Counters, name []byte) *Counters {
	if len(name) == 0 {
		name = []byte(NoName)
	}
	c := m[string(name)]
	if c == nil {
		c = new(Counters)
		m[string(name)] = c
	}
	return c
}
