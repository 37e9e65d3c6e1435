package respcache

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
)

// TestStoreBoundedUnderOneMillionKeys: an attacker varying a key part (a
// query, a Vary-named header) makes a new entry per request; the store
// evicts the oldest and the heap stays within the budget plus the index.
func TestStoreBoundedUnderOneMillionKeys(t *testing.T) {
	const budget = 16 << 20
	s, err := New(Options{MaxBytes: budget, MaxEntryBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	value := make([]byte, 600) // a typical small answer with its head
	key := make([]byte, 0, 64)
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 200_000 // the race detector makes each Set ~10 times slower
	}
	for i := 0; i < n; i++ {
		key = append(append(key[:0], "httpsite.example/search?q="...), strconv.Itoa(i)...)
		s.Set(key, value)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("%d distinct keys: %d entries kept, store holds %d bytes, heap grew %.1f MiB (budget %d MiB)",
		n, s.Len(), s.Bytes(), float64(grew)/(1<<20), budget>>20)
	if s.Bytes() > budget {
		t.Fatalf("store holds %d bytes, over the %d budget", s.Bytes(), budget)
	}
	// The queues are the budget; the index of what fits adds a little.
	if grew > budget*3/2 {
		t.Fatalf("heap grew %d bytes for a %d budget", grew, budget)
	}
	if _, ok := s.Get([]byte("httpsite.example/search?q=0")); ok {
		t.Fatal("the oldest entry was not evicted")
	}
	last := fmt.Sprintf("httpsite.example/search?q=%d", n-1)
	if _, ok := s.Get([]byte(last)); !ok {
		t.Fatal("the newest entry is missing")
	}
}

func TestStoreDeletePrefixAndReset(t *testing.T) {
	s, err := New(Options{MaxBytes: 4 << 20, MaxEntryBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, k := range []string{"a/1", "a/2", "b/1"} {
		s.Set([]byte(k), []byte("v"))
	}
	s.DeletePrefix([]byte("a/"))
	if _, ok := s.Get([]byte("a/1")); ok {
		t.Fatal("a/1 kept")
	}
	if _, ok := s.Get([]byte("b/1")); !ok {
		t.Fatal("b/1 lost")
	}
	s.Reset()
	if s.Len() != 0 || s.Stats.Resyncs.Load() != 1 {
		t.Fatal("reset kept entries")
	}
	// An entry larger than a shard is refused, not an error.
	s.Set([]byte("huge"), make([]byte, 8<<20))
	if s.Stats.Rejected.Load() != 1 {
		t.Fatal("huge entry not refused")
	}
}
