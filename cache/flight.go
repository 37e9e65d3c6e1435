package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/edgeproxy/edgeproxy/coupon"
)

// Flights coalesce concurrent misses of one L1 key ("id:X", "cell:X"):
// the first request to miss reads Redis and decodes (the leader); the
// others that miss meanwhile wait for its result instead of reading and
// decoding the same key again. rueidis already coalesces its own cached
// reads of a key, but each request then decoded the reply itself (a dense
// cell's index is a megabyte), and reads that bypass rueidis's cache
// (stream lost) were not coalesced at all. Only misses touch flights: a
// hit takes no lock and allocates nothing more.
//
// Freshness: a flight records the snapshot its leader took before reading
// (epoch, the key's stripe generation, whether the stream was lost). A
// request joins it only if its own snapshot is the same, so the answer it
// gets is the one it would have served from the entry the leader is about
// to store (that entry carries the same snapshot). While the stream is
// lost under on_stream_loss "bypass", answers must come from Redis reads
// that began after the request did: a request then joins only a flight
// created after it began.
type flightMap struct {
	shards [64]flightShard
	seq    atomic.Uint64 // flights created so far
}

type flightShard struct {
	mu sync.Mutex
	m  map[string]*flight
	_  [48]byte // keeps shards' locks on separate cache lines
}

// flightSnap is what a flight's result depends on.
type flightSnap struct {
	epoch, gen uint64
	lost       bool
}

// errNoRead is a flight's result until its leader sets one.
var errNoRead = errors.New("the read of a coalesced miss did not finish")

type flight struct {
	snap flightSnap
	seq  uint64 // order of creation (flightMap.seq)
	done chan struct{}
	// joined counts the requests that joined (for tests and debugging).
	joined atomic.Int32

	// Set by the leader before done is closed, read-only after.
	h   header
	ix  *coupon.Index // a cell's index
	raw []byte        // a coupon's JSON; nil when it does not exist
	st  coupon.Status
	err error
}

// join returns the flight of key the caller may share (lead false), or a
// new one the caller must lead and finish. since: join only flights
// created after the caller read fm.seq (0: any).
func (fm *flightMap) join(key string, snap flightSnap, since uint64) (*flight, bool) {
	sh := &fm.shards[fnv(fnvOffset, key)&63]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if f := sh.m[key]; f != nil && f.snap == snap && f.seq > since {
		f.joined.Add(1)
		return f, false
	}
	if sh.m == nil {
		sh.m = map[string]*flight{}
	}
	f := &flight{snap: snap, seq: fm.seq.Add(1), done: make(chan struct{}), err: errNoRead}
	sh.m[key] = f // a flight it replaces still finishes for its own waiters
	return f, true
}

// finish publishes the leader's result (set on f before) to its waiters.
func (fm *flightMap) finish(key string, f *flight) {
	sh := &fm.shards[fnv(fnvOffset, key)&63]
	sh.mu.Lock()
	if sh.m[key] == f {
		delete(sh.m, key)
	}
	sh.mu.Unlock()
	close(f.done)
}

// wait reports whether f finished without error before ctx ended.
func (f *flight) wait(ctx context.Context) bool {
	select {
	case <-f.done: // first: ctx may have ended meanwhile
		return f.err == nil
	default:
	}
	select {
	case <-f.done:
		return f.err == nil
	case <-ctx.Done():
		return false
	}
}

// flightSince is the since a request passes to join, given since0, what
// it read from flights.seq before its snapshot.
func (s *Store) flightSince(since0 uint64, lost bool) uint64 {
	if lost && s.o.OnStreamLoss == Bypass {
		return since0
	}
	return 0
}
