package cache

import (
	"bufio"
	"errors"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/coupon"
	"github.com/edgeproxy/edgeproxy/internal/redistest"
)

// coldNearby loads the sample's coupons in the cover of a 1.5 km search
// around Tokyo station (and a few others) into a fresh Redis, and returns
// it with the cover.
func coldNearby(t *testing.T) (*redistest.Server, Options, []byte) {
	t.Helper()
	r := redistest.Start(t)
	o := testOptions(r.Addr)
	// The host is shared: a wait or a dial bounded at 200 ms could end
	// before a slow but successful one, which is not what is tested here.
	o.CommandTimeout, o.DialTimeout = 5*time.Second, 5*time.Second
	hashes, err := coupon.Cover(nil, 35.681, 139.767, 1500, 5)
	if err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, o)
	f, err := os.Open("../testdata/coupons.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 0; sc.Scan(); n++ {
		c, err := coupon.Parse(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if n%50 != 0 && !strings.Contains(string(hashes), coupon.Geohash(c.Lat, c.Lon, 5)) {
			continue
		}
		if err := w.Put(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	return r, o, hashes
}

// burst runs ask from n goroutines released at once.
func burst(n int, ask func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ask(i)
		}()
	}
	close(start)
	wg.Wait()
}

var flightModes = []struct {
	name string
	lost bool
	loss StreamLoss
	once bool // one read per key expected
	n    int  // requests
}{
	{"cached", false, Bypass, true, 64},
	// rueidis's cache is bypassed: only the store's flights coalesce.
	{"lost-serve", true, Serve, true, 64},
	// Answers come from reads begun after the request: few coalesce, and
	// 64 decodes at once under -race on a shared host outlast a timeout.
	{"lost-bypass", true, Bypass, false, 8},
}

// TestCellsColdBurstReadOnce: 64 requests asking at once for the same cold
// cells make one Redis read and one decode of each cell, and all get the
// answer a lone request gets.
func TestCellsColdBurstReadOnce(t *testing.T) {
	r, o, hashes := coldNearby(t) // each store below starts cold
	for _, mode := range flightModes {
		t.Run(mode.name, func(t *testing.T) {
			o := o
			o.OnStreamLoss, o.DegradedTTL = mode.loss, time.Minute
			ncells := len(hashes) / 5
			var want []string
			{
				var c collect
				ref := newStore(t, o)
				if _, err := ref.Cells(hashes, 5, &c); err != nil {
					e, _ := ref.LastError()
					t.Fatalf("%v (%s)", err, e)
				}
				want = c.ids
				sort.Strings(want)
				if len(want) < 100 {
					t.Fatalf("only %d coupons in the cover", len(want))
				}
			}
			s := newStore(t, o)
			s.lost.Store(mode.lost)
			before := r.CommandCalls()["hgetall"]
			got := make([][]string, mode.n)
			sts := make([]coupon.Status, mode.n)
			errs := make([]error, mode.n)
			began := time.Now()
			burst(mode.n, func(i int) {
				var c collect
				sts[i], errs[i] = s.Cells(hashes, 5, &c)
				sort.Strings(c.ids)
				got[i] = c.ids
			})
			took := time.Since(began)
			hgetall := r.CommandCalls()["hgetall"] - before
			decodes := s.Stats.Misses.Load() + s.Stats.L2Hits.Load()
			t.Logf("%d requests, %d cells, %d coupons: %d HGETALL, %d decodes, %d cells coalesced, all answered in %v",
				mode.n, ncells, len(want), hgetall, decodes, s.Stats.Coalesced.Load(), took.Round(time.Millisecond))
			for i := range got {
				// A late request may find the cells cached (Hit).
				if errs[i] != nil || sts[i] == coupon.Stale || !slices.Equal(got[i], want) {
					e, _ := s.LastError()
					t.Fatalf("request %d: %v %v (%s), %d coupons, want %d", i, sts[i], errs[i], e, len(got[i]), len(want))
				}
			}
			// An invalidation interleaving (none here) could add a read.
			if mode.once && (hgetall > ncells || decodes > uint64(ncells)) {
				t.Errorf("%d HGETALL and %d decodes for %d cells", hgetall, decodes, ncells)
			}
			if hgetall != int(decodes) || hgetall > mode.n*ncells {
				t.Errorf("%d HGETALL, %d decodes", hgetall, decodes)
			}
		})
	}
}

// TestCouponColdBurstReadOnce: the same for one coupon by id.
func TestCouponColdBurstReadOnce(t *testing.T) {
	for _, mode := range flightModes {
		t.Run(mode.name, func(t *testing.T) {
			r := redistest.Start(t)
			o := testOptions(r.Addr)
			o.CommandTimeout, o.DialTimeout = 5*time.Second, 5*time.Second
			o.OnStreamLoss, o.DegradedTTL = mode.loss, time.Minute
			const raw = `{"id":"one","lat":1,"lon":1}`
			put(t, newWriter(t, o), raw)
			s := newStore(t, o)
			s.lost.Store(mode.lost)
			before := r.CommandCalls()["get"]
			var bad atomic.Int32
			burst(mode.n, func(int) {
				if got, st, err := s.Coupon([]byte("one")); err != nil || st == coupon.Stale || string(got) != raw {
					bad.Add(1)
				}
			})
			gets := r.CommandCalls()["get"] - before
			t.Logf("%d requests: %d GET, %d coalesced", mode.n, gets, s.Stats.Coalesced.Load())
			if bad.Load() > 0 {
				t.Errorf("%d wrong answers", bad.Load())
			}
			if mode.once && gets != 1 {
				t.Errorf("%d GETs", gets)
			}
		})
	}
}

// TestJoinedMissAnswersAsItsLeader drives a flight by hand: a request that
// joins it takes the leader's result without reading Redis, falls back to
// the stale entry when the leader fails or is too slow, and does not join
// a flight whose read an invalidation overtook, nor, while the stream is
// lost under "bypass", one that began before it.
func TestJoinedMissAnswersAsItsLeader(t *testing.T) {
	r := redistest.Start(t)
	o := testOptions(r.Addr)
	var offset atomic.Int64
	o.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	const raw = `{"id":"j","lat":1,"lon":1}`
	put(t, newWriter(t, o), raw)
	s := newStore(t, o)
	cellKey := "cell:" + coupon.Geohash(1, 1, 5)
	type answer struct {
		text string
		st   coupon.Status
		err  error
	}
	asks := map[string]func() answer{
		"id:j": func() answer { v, st, err := s.Coupon([]byte("j")); return answer{string(v), st, err} },
		cellKey: func() answer {
			ids, st, err := cellsOf(t, s, 1, 1)
			return answer{strings.Join(ids, ","), st, err}
		},
	}
	stale := map[string]string{"id:j": raw, cellKey: "j"}
	for _, ask := range asks {
		ask() // fills the entry
	}
	offset.Store(int64(o.TTL + time.Minute)) // entries are stale now
	snap := func(key string) flightSnap {
		return flightSnap{epoch: s.epoch.Load(), gen: s.stripeOf([]byte(key)).Load(), lost: s.lost.Load()}
	}
	// lead starts a flight as another request would, and asks while it
	// is in flight; joins: whether the ask should join it.
	lead := func(key string, joins bool) (*flight, <-chan answer) {
		t.Helper()
		f, ok := s.flights.join(key, snap(key), 0)
		if !ok {
			t.Fatalf("%s: a flight is already in the map", key)
		}
		out := make(chan answer, 1)
		go func() { out <- asks[key]() }()
		if joins {
			waitFor(t, func() bool { return f.joined.Load() == 1 })
		}
		return f, out
	}
	reads := func() int { c := r.CommandCalls(); return c["get"] + c["hgetall"] }
	for key := range asks {
		t.Run(key, func(t *testing.T) {
			before := reads()

			f, out := lead(key, true)
			f.err = errors.New("the leader's read failed")
			s.flights.finish(key, f)
			if a := <-out; a.err != nil || a.st != coupon.Stale || a.text != stale[key] {
				t.Errorf("leader failed: %+v, want the stale entry", a)
			}

			f, out = lead(key, true)
			f.h, f.st, f.err = header{found: true}, coupon.Miss, nil
			f.raw, f.ix = []byte(`{"id":"x"}`), coupon.NewIndex([]coupon.Coupon{{ID: "x"}})
			s.flights.finish(key, f)
			if a := <-out; a.err != nil || a.st != coupon.Miss || (a.text != `{"id":"x"}` && a.text != "x") {
				t.Errorf("leader read: %+v, want its answer", a)
			}

			f, out = lead(key, true)
			start := time.Now()
			if a := <-out; a.err != nil || a.st != coupon.Stale || a.text != stale[key] {
				t.Errorf("leader slow: %+v, want the stale entry", a)
			}
			if took := time.Since(start); took > o.CommandTimeout+time.Second {
				t.Errorf("waited %v for a slow leader", took)
			}
			s.flights.finish(key, f)
			if n := reads() - before; n != 0 {
				t.Errorf("requests that joined read Redis %d times", n)
			}

			// An invalidation after the leader's snapshot: read (here from
			// rueidis's cache, which had no push), not joined.
			f, _ = s.flights.join(key, snap(key), 0)
			s.stripeOf([]byte(key)).Add(1)
			if a := asks[key](); a.err != nil || a.st == coupon.Stale || a.text != stale[key] || f.joined.Load() != 0 {
				t.Errorf("after an invalidation: %+v, %d joined, want a read", a, f.joined.Load())
			}
			s.flights.finish(key, f)

			// Stream lost, "bypass": a flight from before the request is
			// not joined; under "serve" it is.
			s.lost.Store(true)
			defer s.lost.Store(false)
			f, _ = s.flights.join(key, snap(key), 0)
			if a := asks[key](); a.err != nil || a.st != coupon.Miss || a.text != stale[key] {
				t.Errorf("lost, bypass: %+v, want a read", a)
			}
			s.flights.finish(key, f)
			if n := reads() - before; n != 1 || f.joined.Load() != 0 {
				t.Errorf("%d reads, %d joined, want a read from Redis", n, f.joined.Load())
			}
			s.o.OnStreamLoss = Serve
			defer func() { s.o.OnStreamLoss = Bypass }()
			f, out = lead(key, true)
			f.err = errors.New("failed")
			s.flights.finish(key, f)
			<-out
		})
	}
}
