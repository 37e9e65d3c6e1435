package cache

import (
	"fmt"
	"testing"
)

// The byte count stays the sum of what the shard holds, within its bound,
// however often the same keys are replaced.
func TestL0CountsEveryEntryOnce(t *testing.T) {
	c := newL0Cache(64 * 300) // 300 bytes a shard: room for one or two entries
	for i := 0; i < 5000; i++ {
		key := fmt.Sprintf("id:%d", i%40)
		c.put(key, l0Entry{raw: make([]byte, 50+i%100)})
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sum := 0
		for k, e := range sh.m {
			sum += e.size(k)
		}
		if sh.bytes != sum || sh.bytes > c.maxPerShard {
			t.Errorf("shard %d counts %d bytes, holds %d, bound %d", i, sh.bytes, sum, c.maxPerShard)
		}
	}
}
