package cache

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/coupon"
)

// TestClusterFailoverReadCost measures what one failover costs in Redis
// reads: three instances, each holding 3,000 coupons by id and their
// cells, keep reading all of them while a master is killed; the reads
// they send to Redis from the kill until all are warm again are counted.
// It takes about 20 s, so it runs only with EDGEPROXY_FAILOVER_COST=1:
//
//	EDGEPROXY_FAILOVER_COST=1 go test ./cache -run FailoverReadCost -v
func TestClusterFailoverReadCost(t *testing.T) {
	if os.Getenv("EDGEPROXY_FAILOVER_COST") == "" {
		t.Skip("set EDGEPROXY_FAILOVER_COST=1 to measure a failover's re-reads (about 20 s)")
	}
	r := newClusterRig(t)
	const n = 3000
	raw := func(i int) string {
		return fmt.Sprintf(`{"id":"fc%d","lat":%.4f,"lon":%.4f}`, i, 30+float64(i%60)*0.1, 130+float64(i/60)*0.1)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 8 {
				c, _ := coupon.Parse([]byte(raw(i)))
				if err := r.w.Put(context.Background(), c); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	cellSet := map[string]bool{}
	for i := 0; i < n; i++ {
		c, _ := coupon.Parse([]byte(raw(i)))
		cellSet[coupon.Geohash(c.Lat, c.Lon, 5)] = true
	}
	var cells []byte
	for h := range cellSet {
		cells = append(cells, h...)
	}
	ids := make([][]byte, n)
	for i := range ids {
		ids[i] = []byte(fmt.Sprintf("fc%d", i))
	}
	pass := func(s *Store) {
		for _, id := range ids {
			s.Coupon(id)
		}
		for i := 0; i+5 <= len(cells); i += 5 * 64 { // nearby searches of 64 cells
			var c collect
			s.Cells(cells[i:min(i+5*64, len(cells))], 5, &c)
		}
	}
	reads := func() uint64 {
		var sum uint64
		for _, s := range r.stores {
			sum += s.Stats.Misses.Load()
		}
		return sum
	}
	for _, s := range r.stores {
		pass(s)
		pass(s)
	}
	entries := n + len(cellSet)
	t.Logf("%d coupons in %d cells: %d entries on each of %d instances", n, len(cellSet), entries, len(r.stores))

	// Two readers per instance keep reading everything through the failover.
	var stop atomic.Bool
	for _, s := range r.stores {
		for g := 0; g < 2; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					pass(s)
				}
			}()
		}
	}
	before := reads()
	start := time.Now()
	killed, promoted := r.c.KillMaster(0)
	t.Logf("killed %s; %s took over after %v", killed.Addr, promoted.Addr, time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // past the topology poll and a few full passes
	stop.Store(true)
	wg.Wait()
	during := reads() - before
	// Warm again: one more pass reads nothing.
	settled := reads()
	for _, s := range r.stores {
		pass(s)
	}
	if extra := reads() - settled; extra != 0 {
		t.Errorf("a pass after the failover still made %d reads", extra)
	}
	t.Logf("one failover cost %d Redis reads over %d instances × %d entries = %.2f reads per cached entry", during, len(r.stores), entries, float64(during)/float64(len(r.stores)*entries))
	for k, s := range r.stores {
		t.Logf("instance %d: %d topology changes, %d connection losses", k, s.topo.Changes.Load(), s.Stats.InvalidateAll.Load())
	}
}
