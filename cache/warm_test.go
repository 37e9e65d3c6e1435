package cache

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/coupon"
	"github.com/edgeproxy/edgeproxy/internal/redistest"
)

// A store that takes over (binary upgrade) warms with the keys the old one
// used and then answers them without reading Redis.
func TestHotKeysWarmAnotherStore(t *testing.T) {
	r := redistest.Start(t)
	o := testOptions(r.Addr)
	w := newWriter(t, o)
	for i := 0; i < 20; i++ {
		put(t, w, fmt.Sprintf(`{"id":"w%d","lat":35.%03d,"lon":139.767}`, i, 600+i))
	}
	old := newStore(t, o)
	cell := []byte(coupon.Geohash(35.61, 139.767, 5))
	for range 2 { // L0 takes what is read again
		for i := 0; i < 20; i++ {
			old.Coupon([]byte(fmt.Sprintf("w%d", i)))
		}
		old.Coupon([]byte("missing"))
	}
	var c collect
	if _, err := old.Cells(cell, 5, &c); err != nil {
		t.Fatal(err)
	}
	keys := old.HotKeys(1000)
	sort.Strings(keys)
	if len(keys) != 22 || keys[0] != "cell:"+string(cell) || keys[1] != "id:missing" {
		t.Fatalf("hot keys: %d %v", len(keys), keys)
	}
	if n := len(old.HotKeys(5)); n != 5 {
		t.Errorf("HotKeys(5) gave %d", n)
	}

	fresh := newStore(t, o)
	before := r.CommandCalls()
	n, err := fresh.Warm(context.Background(), append(keys, "bogus", "cell:x"))
	if err != nil || n != 22 {
		t.Fatalf("warm: %d %v", n, err)
	}
	after := r.CommandCalls()
	if reads := after["get"] + after["hgetall"] - before["get"] - before["hgetall"]; reads != 22 {
		t.Errorf("warming 22 keys took %d Redis reads", reads)
	}
	misses := fresh.Stats.Misses.Load()
	for i := 0; i < 20; i++ {
		if raw, st, err := fresh.Coupon([]byte(fmt.Sprintf("w%d", i))); err != nil || st != coupon.Hit || raw == nil {
			t.Errorf("w%d after warming: %v %v %q", i, st, err, raw)
		}
	}
	var c2 collect
	if st, err := fresh.Cells(cell, 5, &c2); err != nil || st != coupon.Hit {
		t.Errorf("cell after warming: %v %v", st, err)
	}
	if fresh.Stats.Misses.Load() != misses {
		t.Errorf("reads after warming missed")
	}

	// With Redis gone, Warm gives up when its context ends.
	r.Stop()
	cold := newStore(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	n, err = cold.Warm(ctx, keys)
	if n != 0 || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, coupon.ErrUnavailable) {
		t.Errorf("warm without Redis: %d %v", n, err)
	}
}
