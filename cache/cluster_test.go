package cache

import (
	"context"
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

// clusterRig is a Redis Cluster with a writer and three edge stores over it,
// as three edgeproxy instances would have.
type clusterRig struct {
	c      *redistest.Cluster
	w      *Writer
	stores []*Store
}

func newClusterRig(t *testing.T) *clusterRig {
	c := redistest.StartCluster(t)
	o := clusterOptions(c)
	r := &clusterRig{c: c, w: newWriter(t, o)}
	for i := 0; i < 3; i++ {
		// Each instance is given another node, masters and a replica
		// (redis-cli makes the first three nodes masters).
		oi := o
		oi.Addrs = []string{c.Nodes[2*i].Addr}
		oi.StaleIfError = time.Minute
		// Generous for a shared 2-core machine under -race; the freshness
		// bound the tests check (1 s) does not depend on it.
		oi.CommandTimeout, oi.DialTimeout = time.Second, time.Second
		r.stores = append(r.stores, newStore(t, oi))
	}
	return r
}

// dataCalls counts the commands that read or write coupon data on every
// live node (not CLUSTER SLOTS, PING, INFO).
func dataCalls(c *redistest.Cluster) int {
	n := 0
	for cmd, calls := range c.CommandCalls() {
		switch cmd {
		case "get", "hgetall", "multi", "exec", "pttl", "client|caching", "set", "hset", "hdel", "del", "mget":
			n += calls
		}
	}
	return n
}

// spread is coupon i of n at a position spread over Japan, so their
// cells (and id keys) hash to slots on every master.
func spread(i, v int) string {
	return fmt.Sprintf(`{"id":"sp%d","lat":%.4f,"lon":%.4f,"v":%d}`, i, 33+float64(i%20)*0.21, 132+float64(i/20)*0.23, v)
}

func TestClusterThreeInstancesAnswerRightAndFresh(t *testing.T) {
	r := newClusterRig(t)
	const n = 200
	for i := 0; i < n; i++ {
		put(t, r.w, spread(i, 0))
	}
	// The cells are spread over every master.
	owners := map[int]bool{}
	for i := 0; i < n; i++ {
		c, _ := coupon.Parse([]byte(spread(i, 0)))
		owners[redistest.KeySlot("coupon:cell:"+coupon.Geohash(c.Lat, c.Lon, 5))*3/16384] = true
	}
	if len(owners) != 3 {
		t.Fatalf("cells in slots of %d thirds only", len(owners))
	}
	// A nearby search's cells: those of the coupons, and empty ones.
	var cover []byte
	inCover := map[string]bool{}
	for i := 0; i < n; i++ {
		c, _ := coupon.Parse([]byte(spread(i, 0)))
		inCover[coupon.Geohash(c.Lat, c.Lon, 5)] = true
	}
	for h := range inCover {
		cover = append(cover, h...)
	}
	cover = append(cover, coupon.Geohash(10, 10, 5)+coupon.Geohash(-10, 100, 5)...)
	read := func(s *Store) {
		t.Helper()
		for i := 0; i < n; i += 7 {
			raw, _, err := s.Coupon([]byte(fmt.Sprintf("sp%d", i)))
			if err != nil || string(raw) != spread(i, 0) {
				t.Fatalf("sp%d: %q %v", i, raw, err)
			}
		}
		if raw, _, err := s.Coupon([]byte("absent")); err != nil || raw != nil {
			t.Fatalf("absent: %q %v", raw, err)
		}
		var c collect
		if _, err := s.Cells(cover, 5, &c); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for i, id := range c.ids {
			got[id] = c.raws[i]
		}
		for i := 0; i < n; i++ {
			raw := spread(i, 0)
			cp, _ := coupon.Parse([]byte(raw))
			in := inCover[coupon.Geohash(cp.Lat, cp.Lon, 5)]
			if g, ok := got[fmt.Sprintf("sp%d", i)]; ok != in || (ok && g != raw) {
				t.Fatalf("sp%d in the cover's cells: %v (%q), want %v", i, ok, g, in)
			}
		}
	}
	for _, s := range r.stores {
		read(s) // fill
	}
	before := dataCalls(r.c)
	for round := 0; round < 20; round++ {
		for _, s := range r.stores {
			read(s)
		}
	}
	if d := dataCalls(r.c) - before; d != 0 {
		t.Errorf("hot reads on three instances made %d Redis data commands", d)
	}

	// Freshness: 200 writes, each timed until every instance answers it.
	lat := make([][]time.Duration, len(r.stores))
	for v := 1; v <= 200; v++ {
		i := v % n
		id := []byte(fmt.Sprintf("sp%d", i))
		want := spread(i, v)
		put(t, r.w, want)
		acked := time.Now()
		seen := make([]bool, len(r.stores))
		for left := len(r.stores); left > 0; {
			for k, s := range r.stores {
				if seen[k] {
					continue
				}
				if raw, _, _ := s.Coupon(id); string(raw) == want {
					seen[k] = true
					lat[k] = append(lat[k], time.Since(acked))
					left--
				}
			}
			if time.Since(acked) > time.Second {
				t.Fatalf("write %d not visible everywhere within 1s: %v", v, seen)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	for k, l := range lat {
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		p50, p99 := l[len(l)/2], l[(len(l)*99+99)/100-1]
		t.Logf("instance %d: write → visible over %d writes: p50 %v, p99 %v, max %v", k, len(l), p50, p99, l[len(l)-1])
		if p99 > 100*time.Millisecond {
			t.Errorf("instance %d: p99 %v over 100ms", k, p99)
		}
	}
}

// freshness records acknowledged writes and judges answers against them:
// an answer read starting at r0 must not be older than the last write
// acknowledged before r0 - bound.
type freshness struct {
	mu    sync.Mutex
	acked map[string][]ack // by id, in write order
	bound time.Duration
	stale atomic.Int64 // answers older than allowed
	ok    atomic.Int64
}

type ack struct {
	v  int
	at time.Time
}

func (f *freshness) record(id string, v int) {
	f.mu.Lock()
	f.acked[id] = append(f.acked[id], ack{v, time.Now()})
	f.mu.Unlock()
}

// judge: version got (-1 for "not found") of id, read starting at r0.
func (f *freshness) judge(t *testing.T, inst int, id string, got int, r0 time.Time) {
	f.mu.Lock()
	need := -1
	for _, a := range f.acked[id] {
		if a.at.Before(r0.Add(-f.bound)) {
			need = a.v
		}
	}
	f.mu.Unlock()
	if got < need {
		if f.stale.Add(1) <= 5 {
			t.Errorf("instance %d served %s version %d as fresh, %v after version %d was acknowledged", inst, id, got, f.bound, need)
		}
		return
	}
	f.ok.Add(1)
}

// version reads "v" from a coupon's JSON, -1 when there is none.
func version(raw []byte) int {
	if raw == nil {
		return -1
	}
	i := strings.Index(string(raw), `"v":`)
	if i < 0 {
		return -1
	}
	v := 0
	fmt.Sscanf(string(raw[i+4:]), "%d", &v)
	return v
}

// loadCell is the cell of the coupons underLoad writes.
var loadCell = coupon.Geohash(1, 1, 5)

// underLoad runs change while a writer keeps rewriting ids (versions
// counting up) and every instance keeps reading them; fresh (HIT or MISS)
// answers older than the write acknowledged bound before are counted.
func (r *clusterRig) underLoad(t *testing.T, ids []string, change func()) *freshness {
	f := &freshness{acked: map[string][]ack{}, bound: time.Second}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for v := 1; !stop.Load(); v++ {
			for _, id := range ids {
				c, _ := coupon.Parse([]byte(fmt.Sprintf(`{"id":%q,"lat":1,"lon":1,"v":%d}`, id, v)))
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				err := r.w.Put(ctx, c)
				cancel()
				if err == nil {
					f.record(id, v)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	for k, s := range r.stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				for _, id := range ids {
					r0 := time.Now()
					raw, st, err := s.Coupon([]byte(id))
					if err != nil || st == coupon.Stale {
						continue // the outage rules of §6: stale or fallback
					}
					f.judge(t, k, id, version(raw), r0)
				}
				// The same coupons through their cell, as nearby reads them.
				r0 := time.Now()
				var c collect
				if st, err := s.Cells([]byte(loadCell), 5, &c); err == nil && st != coupon.Stale {
					got := map[string]int{}
					for i, id := range c.ids {
						got[id] = version([]byte(c.raws[i]))
					}
					for _, id := range ids {
						v, ok := got[id]
						if !ok {
							v = -1
						}
						f.judge(t, k, id, v, r0)
					}
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // some load before the change
	change()
	time.Sleep(1500 * time.Millisecond) // and past the bound after it
	stop.Store(true)
	wg.Wait()
	return f
}

// idInSlot finds a coupon id whose id key hashes to slot.
func idInSlot(prefix string, slot int) string {
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s%d", prefix, i)
		if redistest.KeySlot("coupon:id:"+id) == slot {
			return id
		}
	}
}

// cellInSlot finds a position whose cell key hashes to slot, the
// (skip+1)th it comes across.
func cellInSlot(slot, skip int) (lat, lon float64) {
	for i := 0; ; i++ {
		lat, lon = -60+float64(i%1200)*0.1, -170+float64(i/1200)*0.1
		if redistest.KeySlot("coupon:cell:"+coupon.Geohash(lat, lon, 5)) == slot {
			if skip == 0 {
				return lat, lon
			}
			skip--
		}
	}
}

// absences reads ids and a cell on every instance until each answers
// "not found" / "empty" from memory: the cached absences of bug (a).
// A read may fail on a loaded machine (200 ms timeout), so it tries again.
func (r *clusterRig) absences(t *testing.T, ids []string, lat, lon float64) {
	t.Helper()
	until := func(what string, cached func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cached() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no cached absence within 5s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for k, s := range r.stores {
		for _, id := range ids {
			until(fmt.Sprintf("instance %d: %s", k, id), func() bool {
				s.Coupon([]byte(id))
				raw, st, err := s.Coupon([]byte(id))
				return raw == nil && st == coupon.Hit && err == nil
			})
		}
		until(fmt.Sprintf("instance %d: cell", k), func() bool {
			cellsOf(t, s, lat, lon)
			got, st, err := cellsOf(t, s, lat, lon)
			return len(got) == 0 && st == coupon.Hit && err == nil
		})
	}
}

// createdVisible writes ids and a coupon at (lat, lon) and waits until
// every instance answers them: a cached absence must not outlive a
// topology change (bound: 1 s).
func (r *clusterRig) createdVisible(t *testing.T, ids []string, lat, lon float64, cellID string) {
	t.Helper()
	for _, id := range ids {
		put(t, r.w, fmt.Sprintf(`{"id":%q,"lat":2,"lon":2}`, id))
	}
	put(t, r.w, fmt.Sprintf(`{"id":%q,"lat":%f,"lon":%f}`, cellID, lat, lon))
	for k, s := range r.stores {
		t.Logf("instance %d: %d topology changes, %d connection losses so far", k, s.TopologyChanges(), s.Stats.InvalidateAll.Load())
		for _, id := range ids {
			d := waitValue(t, func() string { raw, _, _ := s.Coupon([]byte(id)); return string(raw) }, fmt.Sprintf(`{"id":%q,"lat":2,"lon":2}`, id), time.Second)
			t.Logf("instance %d: %s, absent before the change, visible %v after its write", k, id, d)
		}
		waitValue(t, func() string { got, _, _ := cellsOf(t, s, lat, lon); return strings.Join(got, ",") }, cellID, time.Second)
	}
}

func TestClusterTopologyChangesNeverServeStale(t *testing.T) {
	r := newClusterRig(t)
	load := []string{"load0", "load1", "load2", "load3", "load4", "load5"}
	report := func(name string, f *freshness) {
		t.Logf("%s: %d fresh answers judged, %d older than a write acknowledged 1s before", name, f.ok.Load(), f.stale.Load())
		if f.ok.Load() == 0 {
			t.Errorf("%s: no answer judged", name)
		}
	}

	// The steps share one cluster; a step's failure ends the test.
	func() {
		from := r.c.Masters()[0]
		to := r.c.Masters()[1]
		slot := r.c.LowestSlot(from)
		ghost := idInSlot("ghost", slot)
		moving := idInSlot("moving", slot+1) // a present key MIGRATE moves
		put(t, r.w, fmt.Sprintf(`{"id":%q,"lat":3,"lon":3,"v":1}`, moving))
		lat, lon := cellInSlot(slot, 0)
		r.absences(t, []string{ghost}, lat, lon)
		ids := append([]string{moving}, load...)
		f := r.underLoad(t, ids, func() {
			r.c.Reshard(from, to, 2)
			if r.c.Owner(slot) != to || r.c.Owner(slot+1) != to {
				t.Fatalf("slots %d-%d did not move", slot, slot+1)
			}
			r.createdVisible(t, []string{ghost}, lat, lon, "ghostcell-r")
		})
		report("reshard", f)
	}()

	var failedSlot int // a slot of the master killed in "failover"
	func() {
		victim := r.c.Masters()[2]
		slot := r.c.LowestSlot(victim)
		failedSlot = slot
		ghost := idInSlot("ghostf", slot)
		lat, lon := cellInSlot(slot, 0)
		r.absences(t, []string{ghost}, lat, lon)
		f := r.underLoad(t, load, func() {
			killed, promoted := r.c.KillMaster(slot)
			t.Logf("killed %s, %s took over", killed.Addr, promoted.Addr)
			r.createdVisible(t, []string{ghost}, lat, lon, "ghostcell-f")
		})
		report("failover", f)
	}()

	func() {
		var down *redistest.Node
		for _, n := range r.c.Nodes {
			if !n.Alive() {
				down = n
			}
		}
		if down == nil {
			t.Fatal("the failover step did not leave a node down")
		}
		// Absences cached from the promoted node, which the restarted
		// one takes the slot back from.
		ghost := idInSlot("ghostb", failedSlot)
		lat, lon := cellInSlot(failedSlot, 1)
		r.absences(t, []string{ghost}, lat, lon)
		f := r.underLoad(t, load, func() {
			down.Restart()
			r.c.Failover(down)
			if r.c.Owner(failedSlot) != down {
				t.Fatalf("slot %d not back on the restarted node", failedSlot)
			}
			r.createdVisible(t, []string{ghost}, lat, lon, "ghostcell-b")
		})
		report("restart and failback", f)
	}()
	for k, s := range r.stores {
		t.Logf("instance %d: %d topology changes seen, %d connection losses", k, s.TopologyChanges(), s.Stats.InvalidateAll.Load())
		if s.TopologyChanges() < 3 { // reshard, failover, failback
			t.Errorf("instance %d saw %d topology changes, want at least 3", k, s.TopologyChanges())
		}
	}
}
