package cache

import (
	"sync"

	"github.com/edgeproxy/edgeproxy/coupon"
)

// l0Cache is L0: by L1 key, decoded cell indexes and coupon JSON, shared by
// pointer and bounded by bytes. A hit copies and decodes nothing, where an
// L1 (bigcache) hit copies the key and the value out of its shard (two
// allocations) under the shard's lock. It is safe for concurrent use.
type l0Cache struct {
	shards      [64]l0Shard
	maxPerShard int
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
	c := &l0Cache{maxPerShard: int(maxBytes / 64)}
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

// put stores e, first making room by dropping entries picked by the map's
// random iteration order (cheap, and fair enough for hot entries to return).
func (c *l0Cache) put(key string, e l0Entry) {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old, ok := sh.m[key]; ok {
		// Out of the map too, or making room below could count it twice.
		delete(sh.m, key)
		sh.bytes -= old.size(key)
	}
	size := e.size(key)
	for k, old := range sh.m {
		if sh.bytes+size <= c.maxPerShard {
			break
		}
		delete(sh.m, k)
		sh.bytes -= old.size(k)
	}
	sh.m[key] = e
	sh.bytes += size
}

func (c *l0Cache) delete(key string) {
	sh := c.shard(key)
	sh.mu.Lock()
	if old, ok := sh.m[key]; ok {
		delete(sh.m, key)
		sh.bytes -= old.size(key)
	}
	sh.mu.Unlock()
}
