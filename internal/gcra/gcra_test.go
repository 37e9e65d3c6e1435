package gcra

import (
	"strconv"
	"testing"
	"time"
)

func TestBurstThenRate(t *testing.T) {
	tab := New(1024, int64(100*time.Millisecond), 2) // 10/s, burst 2
	h := Hash([]byte("1.2.3.4"))
	now := time.Unix(1000, 0).UnixNano()
	for i := 0; i < 3; i++ {
		if r := tab.Take(h, now, false); !r.Allowed {
			t.Fatalf("request %d refused within burst", i)
		} else if r.Wait != int64(i)*int64(100*time.Millisecond) {
			t.Fatalf("request %d wait %d", i, r.Wait)
		}
	}
	r := tab.Take(h, now, false)
	if r.Allowed || r.Wait != int64(100*time.Millisecond) {
		t.Fatalf("4th at once: %+v, want refused with 100ms to wait", r)
	}
	if r := tab.Take(h, now+int64(100*time.Millisecond), false); !r.Allowed {
		t.Fatal("refused after one interval")
	}
	// Another key is independent.
	if r := tab.Take(Hash([]byte("5.6.7.8")), now, false); !r.Allowed {
		t.Fatal("other key refused")
	}
}

// A flood of distinct keys never grows the table and evicts idle keys
// before a key that is using its burst.
func TestBoundedEviction(t *testing.T) {
	tab := New(64, int64(time.Second), 0)
	now := time.Unix(1000, 0).UnixNano()
	hot := Hash([]byte("hot"))
	if !tab.Take(hot, now, false).Allowed {
		t.Fatal("first refused")
	}
	for i := 0; i < 100000; i++ {
		tab.Take(Hash([]byte(strconv.Itoa(i))), now-int64(time.Hour), false) // idle at once
	}
	if tab.Len() != 64 {
		t.Fatalf("table grew to %d", tab.Len())
	}
	if tab.Take(hot, now, false).Allowed {
		t.Fatal("hot key forgotten: flood of idle keys evicted it")
	}
}

func TestChargeAndDrain(t *testing.T) {
	tab := New(64, int64(time.Second), 5)
	now := time.Unix(1000, 0).UnixNano()
	h := Hash([]byte("k"))
	tab.Take(h, now, true)
	tab.Take(h, now, true)
	var got []Entry
	tab.Drain(now, int64(time.Minute), func(e *Entry) { got = append(got, *e); e.Pending = 0 })
	if len(got) != 1 || got[0].Pending != 2 {
		t.Fatalf("drain: %+v", got)
	}
	tab.Charge(h, 4, 6, now) // 2 here + 4 elsewhere = 6 of burst 5+1
	if tab.Take(h, now, false).Allowed {
		t.Fatal("admitted past the burst after charging remote requests")
	}
}

func TestTakeAllocs(t *testing.T) {
	tab := New(1<<16, int64(time.Millisecond), 10)
	key := []byte("203.0.113.9")
	now := time.Now().UnixNano()
	if n := testing.AllocsPerRun(1000, func() {
		now += 1000
		tab.Take(Hash(key), now, true)
	}); n != 0 {
		t.Fatalf("%v allocations per decision", n)
	}
}

func BenchmarkTake(b *testing.B) {
	tab := New(1<<16, 1, 10)
	key := []byte("203.0.113.9")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		now := time.Now().UnixNano()
		for pb.Next() {
			now++
			tab.Take(Hash(key), now, false)
		}
	})
}
