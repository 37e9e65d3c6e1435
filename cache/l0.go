package cache

import (
	"sync"
	"sync/atomic"

	"github.com/edgeproxy/edgeproxy/coupon"
)

// l0Cache is L0: by L1 key, decoded cell indexes and coupon JSON, shared by
// pointer and bounded by bytes. A hit copies and decodes nothing, where an
// L1 (bigcache) hit copies the key and the value out of its shard (two
// allocations) under the shard's lock. It is safe for concurrent use.
//
// The bound is on the whole cache, not a share per shard: a dense cell's
// index can be larger than a 64th of it (2,000 coupons are about a MiB),
// and with a per-shard bound two such cells in one shard evicted each other
// on every search, which then decoded them again from Redis's answer.
type l0Cache struct {
	shards   [64]l0Shard
	maxBytes int64
	bytes    atomic.Int64  // what all shards hold
	evict    atomic.Uint32 // the shard eviction starts at next
}

type l0Shard struct {
	mu    sync.RWMutex // guards m and bytes
	m     map[string]l0Entry
	bytes int
}

// l0Entry holds a cell's index or a coupon's JSON (nil when the coupon
// does not exist), with the header of the L1 entry it came from.
type l0Entry struct {
	h   header
	ix  *coupon.Index
	raw []byte // never modified: handed to every reader
}

// size is what the entry counts against the bound.
func (e l0Entry) size(key string) int {
	if e.ix != nil {
		return e.ix.Bytes()
	}
	return len(key) + len(e.raw) + 64 // map slot and header, roughly
}

func newL0Cache(maxBytes int64) *l0Cache {
	c := &l0Cache{maxBytes: maxBytes}
	for i := range c.shards {
		c.shards[i].m = map[string]l0Entry{}
	}
	return c
}

func (c *l0Cache) shard(key string) *l0Shard {
	return &c.shards[fnv(fnvOffset, key)&63]
}

func (c *l0Cache) get(key []byte) (l0Entry, bool) {
	sh := c.shard(view(key))
	sh.mu.RLock()
	e, ok := sh.m[string(key)]
	sh.mu.RUnlock()
	return e, ok
}

// put stores e, then makes room by dropping entries picked by the maps'
// random iteration order (cheap, and fair enough for hot entries to
// return), shard by shard, holding one shard's lock at a time. An entry
// larger than the whole bound stays alone.
func (c *l0Cache) put(key string, e l0Entry) {
	sh := c.shard(key)
	sh.mu.Lock()
	delta := e.size(key)
	if old, ok := sh.m[key]; ok {
		delta -= old.size(key)
	}
	sh.m[key] = e
	sh.bytes += delta
	sh.mu.Unlock()
	if c.bytes.Add(int64(delta)) <= c.maxBytes {
		return
	}
	for range len(c.shards) {
		if c.bytes.Load() <= c.maxBytes {
			return
		}
		c.shards[c.evict.Add(1)%uint32(len(c.shards))].shrink(c, key)
	}
}

// shrink drops entries other than keep while the cache is over its bound.
func (sh *l0Shard) shrink(c *l0Cache, keep string) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for k, old := range sh.m {
		if c.bytes.Load() <= c.maxBytes {
			return
		}
		if k == keep {
			continue
		}
		delete(sh.m, k)
		n := old.size(k)
		sh.bytes -= n
		c.bytes.Add(-int64(n))
	}
}

func (c *l0Cache) delete(key string) {
	sh := c.shard(key)
	sh.mu.Lock()
	if old, ok := sh.m[key]; ok {
		delete(sh.m, key)
		n := old.size(key)
		sh.bytes -= n
		c.bytes.Add(-int64(n))
	}
	sh.mu.Unlock()
}
