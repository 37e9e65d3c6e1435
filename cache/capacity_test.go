package cache

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/coupon"
	"github.com/edgeproxy/edgeproxy/internal/redistest"
)

// TestTrackingTableMemory measures what client-side caching costs Redis:
// the tracking table's memory per key an instance has read, for a first
// and a second instance reading the same keys. The README's "Capacity"
// scales these figures. It runs only with EDGEPROXY_CAPACITY=1:
//
//	EDGEPROXY_CAPACITY=1 go test ./cache -run TrackingTableMemory -v
func TestTrackingTableMemory(t *testing.T) {
	if os.Getenv("EDGEPROXY_CAPACITY") == "" {
		t.Skip("set EDGEPROXY_CAPACITY=1 to measure Redis's tracking table")
	}
	r := redistest.Start(t)
	o := testOptions(r.Addr)
	o.CommandTimeout = 2 * time.Second // a measurement, not a latency test
	w := newWriter(t, o)
	const n = 20000
	for i := 0; i < n; i++ {
		c, _ := coupon.Parse([]byte(fmt.Sprintf(`{"id":"m%d","lat":%.4f,"lon":%.4f}`, i, -60+float64(i%200)*0.6, -170+float64(i/200)*3.4)))
		if err := w.Put(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	info := func(field string) int64 {
		s, err := r.Do("INFO", "all")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(s, "\r\n") {
			if v, ok := strings.CutPrefix(l, field+":"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		t.Fatalf("no %s in INFO", field)
		return 0
	}
	readAll := func(s *Store) {
		for i := 0; i < n; i++ {
			if raw, _, err := s.Coupon([]byte(fmt.Sprintf("m%d", i))); err != nil || raw == nil {
				t.Fatalf("m%d: %v", i, err)
			}
		}
	}
	base := info("used_memory")
	for k := 1; k <= 3; k++ {
		readAll(newStore(t, o))
		used := info("used_memory")
		t.Logf("%d instances read %d keys: tracking_total_keys %d, tracking_total_items %d, used_memory +%d bytes (%.1f bytes per key per instance)",
			k, n, info("tracking_total_keys"), info("tracking_total_items"), used-base, float64(used-base)/float64(k*n))
	}
}
