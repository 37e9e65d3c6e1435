package cache

import (
	"fmt"
	"testing"
)

// The byte counts stay the sum of what the shards hold, within the bound,
// however often the same keys are replaced.
func TestL0CountsEveryEntryOnce(t *testing.T) {
	c := newL0Cache(64 * 300)
	for i := 0; i < 5000; i++ {
		key := fmt.Sprintf("id:%d", i%400)
		c.put(key, l0Entry{raw: make([]byte, 50+i%100)})
	}
	total := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sum := 0
		for k, e := range sh.m {
			sum += e.size(k)
		}
		if sh.bytes != sum {
			t.Errorf("shard %d counts %d bytes, holds %d", i, sh.bytes, sum)
		}
		total += sum
	}
	if int64(total) != c.bytes.Load() || int64(total) > c.maxBytes {
		t.Errorf("holds %d bytes, counts %d, bound %d", total, c.bytes.Load(), c.maxBytes)
	}
}

// Entries larger than a 64th of the bound stay while the whole bound has
// room, whichever shards they fall in (dense cells' indexes).
func TestL0KeepsLargeEntriesWithinTheWholeBound(t *testing.T) {
	c := newL0Cache(64 * 1000)
	for i := 0; i < 40; i++ { // 40 entries of ~1.5 shares each: within the bound
		c.put(fmt.Sprintf("cell:%d", i), l0Entry{raw: make([]byte, 1500)})
	}
	for i := 0; i < 40; i++ {
		if _, ok := c.get([]byte(fmt.Sprintf("cell:%d", i))); !ok {
			t.Fatalf("cell:%d was dropped with %d of %d bytes held", i, c.bytes.Load(), c.maxBytes)
		}
	}
	c.put("huge", l0Entry{raw: make([]byte, 100000)}) // more than everything
	if _, ok := c.get([]byte("huge")); !ok || c.bytes.Load() != int64(l0Entry{raw: make([]byte, 100000)}.size("huge")) {
		t.Fatalf("an entry over the bound: kept %v, %d bytes held", ok, c.bytes.Load())
	}
}
