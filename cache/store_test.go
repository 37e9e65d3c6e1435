package cache

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/coupon"
	"github.com/edgeproxy/edgeproxy/internal/redistest"
)

func testOptions(addr string) Options {
	return Options{
		Addrs:          []string{addr},
		KeyPrefix:      "coupon",
		CommandTimeout: 200 * time.Millisecond,
		DialTimeout:    200 * time.Millisecond,
		MaxBytes:       64 << 20,
		TTL:            10 * time.Minute,
		StaleIfError:   time.Hour,
		Precision:      5,
	}
}

func newStore(t *testing.T, o Options) *Store {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newWriter(t *testing.T, o Options) *Writer {
	t.Helper()
	w, err := NewWriter(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	if err := w.EnsureMeta(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w
}

func put(t testing.TB, w *Writer, raw string) {
	t.Helper()
	c, err := coupon.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Put(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// collect is a CellVisitor keeping the coupons it sees.
type collect struct {
	ids  []string
	raws []string
}

func (c *collect) VisitCell(ix *coupon.Index) {
	for i := 0; i < ix.Len(); i++ {
		c.ids = append(c.ids, string(ix.ID(i)))
		c.raws = append(c.raws, string(ix.Raw(i)))
	}
}

func cellsOf(t testing.TB, s *Store, lat, lon float64) ([]string, coupon.Status, error) {
	t.Helper()
	h := []byte(coupon.Geohash(lat, lon, 5))
	var c collect
	st, err := s.Cells(h, 5, &c)
	sort.Strings(c.ids)
	return c.ids, st, err
}

func TestWriterLayout(t *testing.T) {
	r := redistest.Start(t)
	o := testOptions(r.Addr)
	w := newWriter(t, o)
	raw := `{"id":"c1","lat":35.681,"lon":139.767,"title":"a"}`
	put(t, w, raw)
	cell := coupon.Geohash(35.681, 139.767, 5)
	if v, _ := r.Do("GET", "coupon:id:c1"); v != raw {
		t.Errorf("id key = %q", v)
	}
	if v, _ := r.Do("HGET", "coupon:cell:"+cell, "c1"); v != raw {
		t.Errorf("cell field = %q", v)
	}
	if v, _ := r.Do("HGET", "coupon:meta", "precision"); v != "5" {
		t.Errorf("meta precision = %q", v)
	}
	if v, _ := r.Do("HGET", "coupon:meta", "schema"); v != "1" {
		t.Errorf("meta schema = %q", v)
	}
	// Moving the coupon leaves its old cell.
	moved := `{"id":"c1","lat":-33.9,"lon":151.2}`
	put(t, w, moved)
	if n, _ := r.Do("HEXISTS", "coupon:cell:"+cell, "c1"); n != ":0" {
		t.Errorf("old cell still holds the moved coupon")
	}
	if v, _ := r.Do("HGET", "coupon:cell:"+coupon.Geohash(-33.9, 151.2, 5), "c1"); v != moved {
		t.Errorf("new cell field = %q", v)
	}
	existed, err := w.Delete(context.Background(), "c1")
	if err != nil || !existed {
		t.Fatalf("delete: %v %v", existed, err)
	}
	if n, _ := r.Do("EXISTS", "coupon:id:c1"); n != ":0" {
		t.Errorf("id key survives delete")
	}
	if n, _ := r.Do("HEXISTS", "coupon:cell:"+coupon.Geohash(-33.9, 151.2, 5), "c1"); n != ":0" {
		t.Errorf("cell field survives delete")
	}
	// A different precision is refused.
	o6 := o
	o6.Precision = 6
	w6, err := NewWriter(o6)
	if err != nil {
		t.Fatal(err)
	}
	defer w6.Close()
	if err := w6.EnsureMeta(context.Background()); !errors.Is(err, ErrPrecisionMismatch) {
		t.Errorf("EnsureMeta with another precision: %v", err)
	}
}

func TestStoreRefusesPrecisionMismatch(t *testing.T) {
	r := redistest.Start(t)
	r.Do("HSET", "coupon:meta", "precision", "6", "schema", "1")
	_, err := New(testOptions(r.Addr))
	if !errors.Is(err, ErrPrecisionMismatch) || !strings.Contains(err.Error(), "geohash_precision = 6") {
		t.Fatalf("err = %v", err)
	}
}

func TestHotReadsMakeNoRedisRoundTrip(t *testing.T) {
	r := redistest.Start(t)
	o := testOptions(r.Addr)
	w := newWriter(t, o)
	for i := 0; i < 50; i++ {
		put(t, w, fmt.Sprintf(`{"id":"h%d","lat":35.68%d,"lon":139.76%d}`, i, i%10, i%7))
	}
	s := newStore(t, o)
	hashes, _ := coupon.Cover(nil, 35.685, 139.765, 2000, 5)
	read := func() {
		for i := 0; i < 50; i++ {
			if raw, _, err := s.Coupon([]byte(fmt.Sprintf("h%d", i))); err != nil || raw == nil {
				t.Fatalf("h%d: %q %v", i, raw, err)
			}
		}
		var c collect
		if _, err := s.Cells(hashes, 5, &c); err != nil || len(c.ids) != 50 {
			t.Fatalf("cells: %d ids, %v", len(c.ids), err)
		}
		for i, id := range c.ids {
			if !strings.Contains(c.raws[i], `"id":"`+id+`"`) {
				t.Fatalf("cell coupon %s: %q", id, c.raws[i])
			}
		}
	}
	read() // fill
	before := r.CommandCalls()
	for i := 0; i < 200; i++ {
		read()
	}
	after := r.CommandCalls()
	for cmd, n := range after {
		// PING is rueidis's keep-alive, sent every second whatever the load.
		if cmd != "info" && cmd != "ping" && n != before[cmd] {
			t.Errorf("hot reads sent %d %s commands to Redis", n-before[cmd], cmd)
		}
	}
	t.Logf("hot load: %d coupon and %d cell reads, Redis commands before %v after %v", 200*50, 200*len(hashes)/5, before, after)
}

func TestConcurrentMissesMakeOneRead(t *testing.T) {
	r := redistest.Start(t)
	o := testOptions(r.Addr)
	w := newWriter(t, o)
	put(t, w, `{"id":"one","lat":1,"lon":1}`)
	s := newStore(t, o)
	before := r.CommandCalls()["get"]
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if raw, _, err := s.Coupon([]byte("one")); err != nil || raw == nil {
				t.Errorf("%q %v", raw, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := r.CommandCalls()["get"] - before; n != 1 {
		t.Errorf("64 concurrent misses made %d GETs", n)
	}
}

// waitValue polls until read returns want and reports how long it took.
func waitValue(t testing.TB, read func() string, want string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if read() == want {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("value %q not seen within %v (last %q)", want, limit, read())
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func TestWritesAreVisibleWithin100ms(t *testing.T) {
	r := redistest.Start(t)
	o := testOptions(r.Addr)
	w := newWriter(t, o)
	s := newStore(t, o)
	readID := func() string { raw, _, _ := s.Coupon([]byte("f")); return string(raw) }
	readCell := func() string {
		var c collect
		s.Cells([]byte(coupon.Geohash(10, 10, 5)), 5, &c)
		return strings.Join(c.ids, ",")
	}
	var lat []time.Duration
	for i := 0; i < 100; i++ {
		raw := fmt.Sprintf(`{"id":"f","lat":10,"lon":10,"v":%d}`, i)
		readID() // keep both layers hot with the old value
		readCell()
		put(t, w, raw)
		lat = append(lat, waitValue(t, readID, raw, time.Second))
	}
	// A write of a new coupon into a hot cell, and its deletion.
	put(t, w, `{"id":"g","lat":10,"lon":10}`)
	waitValue(t, readCell, "f,g", time.Second)
	w.Delete(context.Background(), "g")
	waitValue(t, readCell, "f", time.Second)

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p50, p99 := lat[len(lat)/2], lat[(len(lat)*99+99)/100-1]
	t.Logf("write → visible over %d writes: p50 %v, p99 %v, max %v", len(lat), p50, p99, lat[len(lat)-1])
	if p99 > 100*time.Millisecond {
		t.Errorf("p99 %v over 100ms", p99)
	}
}

// TestFillRacingInvalidationLeavesNoStaleEntry reads while a writer
// changes the value, many times; once the last value has been seen every
// later read must return it, whatever fill was in flight.
func TestFillRacingInvalidationLeavesNoStaleEntry(t *testing.T) {
	r := redistest.Start(t)
	o := testOptions(r.Addr)
	w := newWriter(t, o)
	s := newStore(t, o)
	for round := 0; round < 30; round++ {
		id := fmt.Sprintf("race%d", round)
		var stop atomic.Bool
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					s.Coupon([]byte(id))
					var c collect
					s.Cells([]byte(coupon.Geohash(20, 20, 5)), 5, &c)
				}
			}()
		}
		var last string
		for v := 0; v < 20; v++ {
			last = fmt.Sprintf(`{"id":%q,"lat":20,"lon":20,"v":%d}`, id, v)
			put(t, w, last)
		}
		stop.Store(true)
		wg.Wait()
		read := func() string { raw, _, _ := s.Coupon([]byte(id)); return string(raw) }
		// Latency is TestWritesAreVisibleWithin100ms's business; this test
		// is about what is served once the last value has been seen.
		waitValue(t, read, last, time.Second)
		for i := 0; i < 50; i++ {
			if got := read(); got != last {
				t.Fatalf("round %d: stale value %s after %s was served", round, got, last)
			}
		}
	}
}

func TestFlushAllMakesEveryEntryStale(t *testing.T) {
	r := redistest.Start(t)
	o := testOptions(r.Addr)
	w := newWriter(t, o)
	put(t, w, `{"id":"x","lat":30,"lon":30}`)
	s := newStore(t, o)
	if ids, _, _ := cellsOf(t, s, 30, 30); len(ids) != 1 {
		t.Fatalf("fill: %v", ids)
	}
	s.Coupon([]byte("x"))
	epoch := s.epoch.Load()
	r.Do("FLUSHALL")
	read := func() string { raw, _, _ := s.Coupon([]byte("x")); return string(raw) }
	waitValue(t, read, "", 100*time.Millisecond)
	if ids, _, _ := cellsOf(t, s, 30, 30); len(ids) != 0 {
		t.Errorf("cell still served after FLUSHALL: %v", ids)
	}
	if s.epoch.Load() == epoch {
		t.Errorf("FLUSHALL did not bump the epoch")
	}
}

func TestTTLBoundsL1(t *testing.T) {
	r := redistest.Start(t)
	o := testOptions(r.Addr)
	o.TTL = 2 * time.Second
	var offset atomic.Int64
	o.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	w := newWriter(t, o)
	put(t, w, `{"id":"t","lat":1,"lon":2}`)
	s := newStore(t, o)
	s.Coupon([]byte("t"))
	hits := s.Stats.L1Hits.Load()
	s.Coupon([]byte("t"))
	if s.Stats.L1Hits.Load() != hits+1 {
		t.Fatalf("second read was not an L1 hit")
	}
	offset.Store(int64(3 * time.Second))
	reads := s.Stats.L2Hits.Load() + s.Stats.Misses.Load()
	s.Coupon([]byte("t"))
	if s.Stats.L1Hits.Load() != hits+1 || s.Stats.L2Hits.Load()+s.Stats.Misses.Load() != reads+1 {
		t.Errorf("an entry older than ttl was served from L1")
	}
}

func TestRedisDownServesStaleThenRecovers(t *testing.T) {
	r := redistest.Start(t)
	o := testOptions(r.Addr)
	o.StaleIfError = time.Hour
	w := newWriter(t, o)
	put(t, w, `{"id":"s","lat":40,"lon":40,"v":1}`)
	s := newStore(t, o)
	s.Coupon([]byte("s"))
	cellsOf(t, s, 40, 40)

	stopRedis(t, r, s)
	waitFor(t, func() bool { _, st, _ := s.Coupon([]byte("s")); return st == coupon.Stale })
	start := time.Now()
	raw, st, err := s.Coupon([]byte("s"))
	if err != nil || st != coupon.Stale || !strings.Contains(string(raw), `"v":1`) {
		t.Errorf("while down: %q %v %v", raw, st, err)
	}
	if ids, st, err := cellsOf(t, s, 40, 40); err != nil || st != coupon.Stale || len(ids) != 1 {
		t.Errorf("cells while down: %v %v %v", ids, st, err)
	}
	if _, _, err := s.Coupon([]byte("never-read")); !errors.Is(err, coupon.ErrUnavailable) {
		t.Errorf("uncached read while down: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("reads while Redis is down took %v", took)
	}

	r.Restart() // empty: the coupon is gone now
	w2 := newWriter(t, o)
	put(t, w2, `{"id":"s","lat":40,"lon":40,"v":2}`)
	read := func() string { raw, _, _ := s.Coupon([]byte("s")); return string(raw) }
	waitValue(t, read, `{"id":"s","lat":40,"lon":40,"v":2}`, 5*time.Second)
	if raw, st, _ := s.Coupon([]byte("s")); st == coupon.Stale || !strings.Contains(string(raw), `"v":2`) {
		t.Errorf("after recovery: %q %v", raw, st)
	}
}

func TestStaleIfErrorBoundsStaleAnswers(t *testing.T) {
	r := redistest.Start(t)
	o := testOptions(r.Addr)
	o.StaleIfError = time.Minute
	var offset atomic.Int64
	o.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	w := newWriter(t, o)
	put(t, w, `{"id":"old","lat":1,"lon":1}`)
	s := newStore(t, o)
	s.Coupon([]byte("old"))
	stopRedis(t, r, s)
	offset.Store(int64(2 * time.Minute))
	// Once the store knows Redis is gone, the old entry is not served.
	waitFor(t, func() bool { _, _, err := s.Coupon([]byte("old")); return errors.Is(err, coupon.ErrUnavailable) })
}

func TestStartsWithRedisDownAndConnectsLater(t *testing.T) {
	r := redistest.Start(t)
	o := testOptions(r.Addr)
	r.Stop()
	s := newStore(t, o)
	if _, _, err := s.Coupon([]byte("a")); !errors.Is(err, coupon.ErrUnavailable) {
		t.Fatalf("read with Redis down: %v", err)
	}
	r.Restart()
	w := newWriter(t, o)
	put(t, w, `{"id":"a","lat":1,"lon":1}`)
	read := func() string { raw, _, _ := s.Coupon([]byte("a")); return string(raw) }
	waitValue(t, read, `{"id":"a","lat":1,"lon":1}`, 5*time.Second)
}

// waitFor polls cond for up to two seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 2s")
		}
		time.Sleep(time.Millisecond)
	}
}

// stopRedis kills the server and waits until the store has seen its
// connection drop: until then nothing is known to be stale.
func stopRedis(t *testing.T, r *redistest.Server, s *Store) {
	t.Helper()
	epoch := s.epoch.Load()
	r.Stop()
	waitFor(t, func() bool { return s.epoch.Load() != epoch })
}

// A hot coupon is answered from L0, shared, until a write changes it; the
// bytes handed out before stay as they were.
func TestHotCouponComesFromL0UntilChanged(t *testing.T) {
	r := redistest.Start(t)
	o := testOptions(r.Addr)
	w := newWriter(t, o)
	v1, v2 := `{"id":"z","lat":1,"lon":2,"v":1}`, `{"id":"z","lat":1,"lon":2,"v":2}`
	put(t, w, v1)
	s := newStore(t, o)
	read := func() string { raw, _, _ := s.Coupon([]byte("z")); return string(raw) }
	read() // from Redis, into L1
	read() // an L1 hit, kept in L0
	l0 := s.Stats.L0Hits.Load()
	first, _, _ := s.Coupon([]byte("z"))
	if s.Stats.L0Hits.Load() != l0+1 || string(first) != v1 {
		t.Fatalf("third read: %q, L0 hits %d -> %d; want v1 from L0", first, l0, s.Stats.L0Hits.Load())
	}
	put(t, w, v2)
	waitValue(t, read, v2, time.Second)
	if string(first) != v1 {
		t.Errorf("bytes handed out from L0 changed to %q", first)
	}
	l0 = s.Stats.L0Hits.Load()
	read() // an L1 hit again, then L0
	if read() != v2 || s.Stats.L0Hits.Load() != l0+1 {
		t.Errorf("the new value is not served from L0")
	}
}
