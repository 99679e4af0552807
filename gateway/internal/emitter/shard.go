package emitter

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"

	"github.com/sluicegw/sluice/pkg/usage"
)

// A shard is one of the buffers Emit encodes events into. Each request's
// goroutine picks a shard at random and encodes its event there, under
// that shard's lock only: requests on different cores rarely meet, and no
// event is copied through a channel or waits for the loop goroutine. The
// loop takes the shards' batches when one fills (a wake-up on kick) and on
// every FlushInterval.
type shard struct {
	mu     sync.Mutex
	open   map[string]*batch // API id -> batch being filled
	full   []*batch          // sealed by Emit (full), waiting for the loop
	closed bool              // set by the loop when it drains for shutdown

	// Event ids come in blocks from Publisher.idBlock: [idNext, idEnd).
	idNext, idEnd uint64
	idbuf         []byte

	_ [64]byte // keep shards' locks on separate cache lines
}

// idBlockSize is how many event ids a shard takes from the shared counter
// at once.
const idBlockSize = 1024

// shardCount is the number of shards for this process: twice the cores
// that run Go code, as a power of two, so two requests at once rarely pick
// the same shard.
func shardCount() int {
	n := 1
	for n < 2*runtime.GOMAXPROCS(0) && n < 64 {
		n <<= 1
	}
	return n
}

func newShards() []shard {
	s := make([]shard, shardCount())
	for i := range s {
		s[i].open = make(map[string]*batch)
	}
	return s
}

// pick returns a shard chosen at random (runtime's per-thread generator:
// no shared state).
func (p *Publisher) pick() *shard {
	return &p.shards[rand.Uint32()&uint32(len(p.shards)-1)]
}

// add encodes e into sh's open batch of its API, filling in an empty ID or
// Node on the way without changing *e. It reports false when sh is closed.
func (p *Publisher) add(sh *shard, e *usage.Event) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return false
	}
	b := sh.open[e.API]
	if b == nil {
		b = p.newBatch(e.API)
		sh.open[b.api] = b
	}
	id, node := e.ID, e.Node
	if id == "" {
		sh.idbuf = p.eventID(sh.idbuf[:0], p.nextEventSeq(sh))
		id = unsafeString(sh.idbuf) // copied by AppendJSON below
	}
	if node == "" {
		node = p.node
	}
	b.data = usage.AppendJSONWith(b.data, e, id, node)
	b.n++
	if b.n >= p.opts.BatchSize || len(b.data) >= maxBatchBytes {
		delete(sh.open, b.api)
		sh.full = append(sh.full, b)
		p.kickLoop()
	}
	return true
}

// nextEventSeq returns the next event sequence number of sh.
func (p *Publisher) nextEventSeq(sh *shard) uint64 {
	if sh.idNext == sh.idEnd {
		end := p.idBlock.Add(idBlockSize)
		sh.idNext, sh.idEnd = end-idBlockSize+1, end+1
	}
	seq := sh.idNext
	sh.idNext++
	return seq
}

// kickLoop wakes the loop without blocking; one pending wake-up is enough.
func (p *Publisher) kickLoop() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// take moves the shards' full batches, and their open ones when all is
// set, to dst. With closing set it also closes every shard, so no event
// enters after the drain.
func (p *Publisher) take(dst []*batch, all, closing bool) []*batch {
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		dst = append(dst, sh.full...)
		clear(sh.full)
		sh.full = sh.full[:0]
		if all {
			for api, b := range sh.open {
				dst = append(dst, b)
				delete(sh.open, api)
			}
		}
		if closing {
			sh.closed = true
		}
		sh.mu.Unlock()
	}
	return dst
}

// newBatch returns an empty batch of api, reusing an acknowledged one's
// buffer when there is one.
func (p *Publisher) newBatch(api string) *batch {
	b, _ := p.batches.Get().(*batch)
	if b == nil {
		b = &batch{}
	}
	data := b.data[:0]
	*b = batch{api: api, subject: p.subject(api), data: data}
	return b
}

// recycle keeps b's buffer for a later batch unless it grew large.
func (p *Publisher) recycle(b *batch) {
	if cap(b.data) > maxBatchBytes*2 {
		return
	}
	*b = batch{data: b.data[:0]}
	p.batches.Put(b)
}

// eventID appends the id of event seq to dst.
func (p *Publisher) eventID(dst []byte, seq uint64) []byte {
	dst = append(append(dst, p.boot...), '-')
	return strconv.AppendUint(dst, seq, 36)
}
