package cache

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/edgeproxy/edgeproxy/coupon"
	"github.com/edgeproxy/edgeproxy/internal/redistest"
)

// clusterOptions: the store's options over a Redis Cluster, given one
// node's address as an operator would.
func clusterOptions(c *redistest.Cluster) Options {
	return writerOptions(c.Nodes[0].Addr)
}

// writerOptions: a writer's dial may take longer than testOptions' 200 ms
// on a shared machine under -race; these tests are not about timeouts.
func writerOptions(addr string) Options {
	o := testOptions(addr)
	o.DialTimeout = time.Second
	return o
}

// raceImporters runs two writers that move the same coupons to different
// places at once, rounds times, and checks after each round that every
// coupon is in exactly one cell, the one of its id key's position, holding
// the id key's JSON (SPEC §11; bug (b) of issue 13).
func raceImporters(t *testing.T, o Options, rounds int) {
	wa, wb := newWriter(t, o), newWriter(t, o)
	const n = 50
	for round := 0; round < rounds; round++ {
		var wg sync.WaitGroup
		for k, w := range []*Writer{wa, wb} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < n; j++ {
					i := j
					if k == 1 {
						i = n - 1 - j // the other importer walks the file backwards
					}
					// Importer k puts coupon i far from where the other
					// one does, and somewhere new each round.
					lat := float64(-40+k*60) + float64(i)*0.3
					lon := float64(round%7)*10 + float64(k)*5
					raw := fmt.Sprintf(`{"id":"mv%d","lat":%.3f,"lon":%.3f,"by":%d,"round":%d}`, i, lat, lon, k, round)
					c, err := coupon.Parse([]byte(raw))
					if err != nil {
						t.Error(err)
						return
					}
					if err := w.Put(context.Background(), c); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		found, err := wa.Check(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range found {
			t.Errorf("round %d: %s", round, d)
		}
		if t.Failed() {
			return
		}
	}
}

func TestConcurrentImportersOnClusterLeaveOneCell(t *testing.T) {
	c := redistest.StartCluster(t)
	raceImporters(t, clusterOptions(c), 20)
}

func TestConcurrentImportersOnOneRedisLeaveOneCell(t *testing.T) {
	r := redistest.Start(t)
	raceImporters(t, writerOptions(r.Addr), 20)
}

// rawDo runs one command through the writer's client, as a writer that
// stopped half-way would have left it.
func rawDo(t *testing.T, w *Writer, args ...string) {
	t.Helper()
	if err := w.client.Do(context.Background(), w.client.B().Arbitrary(args...).Build()).Error(); err != nil && !rueidis.IsRedisNil(err) {
		t.Fatalf("%v: %v", args, err)
	}
}

// killedWriterLayouts leaves, for each point at which a writer following
// the protocol of lock.go can die, the layout it leaves; Check must report
// exactly those coupons and Repair must make Check clean.
func killedWriterLayouts(t *testing.T, o Options) {
	w := newWriter(t, o)
	ctx := context.Background()
	cellOf := func(lat, lon float64) string { return coupon.Geohash(lat, lon, 5) }
	a := `{"id":"%s","lat":10,"lon":10,"v":1}`
	b := `{"id":"%s","lat":-20,"lon":30,"v":2}`
	same := `{"id":"%s","lat":10,"lon":10,"v":3}`
	for _, id := range []string{"ok", "moved1", "moved2", "upd", "del", "stray", "bad"} {
		put(t, w, fmt.Sprintf(a, id))
	}
	// A move killed after SET id: the coupon is still in its old cell.
	rawDo(t, w, "SET", "coupon:id:moved1", fmt.Sprintf(b, "moved1"))
	// A move killed after HDEL old: the coupon is in no cell.
	rawDo(t, w, "SET", "coupon:id:moved2", fmt.Sprintf(b, "moved2"))
	rawDo(t, w, "HDEL", "coupon:cell:"+cellOf(10, 10), "moved2")
	// An update in place killed after SET id: the cell has the old JSON.
	rawDo(t, w, "SET", "coupon:id:upd", fmt.Sprintf(same, "upd"))
	// A delete killed after DEL id: the cell still has it.
	rawDo(t, w, "DEL", "coupon:id:del")
	// A writer outside the protocol left a copy in a second cell.
	rawDo(t, w, "HSET", "coupon:cell:"+cellOf(-20, 30), "stray", fmt.Sprintf(a, "stray"))
	// An id key that holds no coupon at all.
	rawDo(t, w, "SET", "coupon:id:bad", "not json")

	found, err := w.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range found {
		got = append(got, d.String())
	}
	want := []string{
		"bad: id key is not a valid coupon (",
		"del: in cell " + cellOf(10, 10) + " but there is no id key",
		"moved1: in cell " + cellOf(10, 10) + ", which is not the cell of its position (" + cellOf(-20, 30) + "); missing from its cell " + cellOf(-20, 30),
		"moved2: missing from its cell " + cellOf(-20, 30),
		"stray: in cell " + cellOf(-20, 30) + ", which is not the cell of its position (" + cellOf(10, 10) + ")",
		"upd: cell " + cellOf(10, 10) + " holds other JSON than the id key",
	}
	if len(got) != len(want) {
		t.Fatalf("check found\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("line %d: %q, want %q", i, got[i], want[i])
		}
	}
	for _, d := range found {
		err := w.Repair(ctx, d)
		if d.ID == "bad" {
			if err == nil {
				t.Errorf("repair of an id key with no coupon in it succeeded")
			}
			continue
		}
		if err != nil {
			t.Errorf("repair %s: %v", d.ID, err)
		}
	}
	rawDo(t, w, "DEL", "coupon:id:bad")
	rawDo(t, w, "HDEL", "coupon:cell:"+cellOf(10, 10), "bad")
	if found, err := w.Check(ctx); err != nil || len(found) != 0 {
		t.Fatalf("after repair: %v %v", found, err)
	}
	// Repaired means: each coupon in its own cell with the id key's JSON.
	for id, want := range map[string]string{"moved1": fmt.Sprintf(b, "moved1"), "moved2": fmt.Sprintf(b, "moved2"), "upd": fmt.Sprintf(same, "upd")} {
		c, _ := coupon.Parse([]byte(want))
		v, err := w.client.Do(ctx, w.client.B().Hget().Key("coupon:cell:"+cellOf(c.Lat, c.Lon)).Field(id).Build()).ToString()
		if err != nil || v != want {
			t.Errorf("%s after repair: %q %v", id, v, err)
		}
	}
}

func TestKilledWriterLayoutsOnCluster(t *testing.T) {
	o := clusterOptions(redistest.StartCluster(t))
	killedWriterLayouts(t, o)
	writerWaitsForAnExpiringLock(t, o)
}

func TestKilledWriterLayoutsOnOneRedis(t *testing.T) {
	killedWriterLayouts(t, writerOptions(redistest.Start(t).Addr))
}

// A killed writer's lock holds the coupon until it expires; the next
// writer waits for it, then writes.
func writerWaitsForAnExpiringLock(t *testing.T, o Options) {
	w := newWriter(t, o)
	rawDo(t, w, "SET", "coupon:lock:l1", "someone-else", "PX", "300")
	start := time.Now()
	put(t, w, `{"id":"l1","lat":1,"lon":1}`)
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("the write went ahead after %v, under another writer's lock", d)
	}
	if found, err := w.Check(context.Background()); err != nil || len(found) != 0 {
		t.Fatalf("%v %v", found, err)
	}
}
