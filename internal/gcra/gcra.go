// Package gcra is the Generic Cell Rate Algorithm over a fixed-size key
// table: the rate limiter's state for one route, bounded in memory and
// allocation-free per decision.
//
// A key is known by a 64-bit FNV-1a hash of its bytes, never stored, so the
// table's memory is fixed at New (16–32 bytes an entry) whatever keys
// clients send. The hash is the same in every process, which is what lets
// instances exchange counts per key (ratelimit's shared mode). Two keys
// with one hash share a budget (2⁻⁶⁴ by chance).
//
// The table is set-associative: a key lives in one bucket of `ways`
// entries. A new key takes an empty or idle entry of its bucket (one whose
// theoretical arrival time has passed: forgetting it loses nothing), else
// the entry closest to idle, so a flood of new keys forgives the least
// indebted keys first and never grows memory.
package gcra

import (
	"sync"
)

const ways = 8

// Entry is one key's state.
type Entry struct {
	Hash uint64 // 0: empty
	TAT  int64  // theoretical arrival time, unix ns
	// Pending counts requests admitted here since the last exchange;
	// Seen is the cluster total last read (shared mode only).
	Pending int64
	Seen    int64
}

type bucket struct {
	mu sync.Mutex // guards e
	e  [ways]Entry
}

// Table is safe for concurrent use.
type Table struct {
	buckets []bucket
	mask    uint64
	// Interval is the emission interval T (ns between requests at the
	// rate); Tolerance is burst·T, how far ahead of now TAT may run.
	Interval, Tolerance int64
}

// New makes a table for at least maxKeys keys admitting one request per
// interval ns with burst extra at once.
func New(maxKeys int, interval int64, burst int) *Table {
	n := 1
	for n*ways < maxKeys {
		n <<= 1
	}
	return &Table{buckets: make([]bucket, n), mask: uint64(n - 1), Interval: interval, Tolerance: int64(burst) * interval}
}

// Hash is FNV-1a 64 of key, never 0.
func Hash(key []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range key {
		h ^= uint64(c)
		h *= 1099511628211
	}
	if h == 0 {
		h = 1
	}
	return h
}

// Result is one decision.
type Result struct {
	Allowed bool
	// Wait: for an admitted request, how long it would queue behind the
	// ones before it at the rate (nginx delays it this long without
	// nodelay); for a refused one, how long until it would be admitted.
	Wait int64
	// Ahead is TAT-now after the decision: how much of the burst is used.
	Ahead int64
}

// Take decides one request of key hash h at now (unix ns) and, when
// admitted, charges it (count marks it Pending for an exchange).
func (t *Table) Take(h uint64, now int64, count bool) Result {
	b := &t.buckets[(h>>32^h)&t.mask]
	b.mu.Lock()
	e := b.find(h, now)
	tat := max(e.TAT, now)
	ahead := tat - now
	if ahead > t.Tolerance {
		b.mu.Unlock()
		return Result{Wait: ahead - t.Tolerance, Ahead: ahead}
	}
	e.TAT = tat + t.Interval
	if count {
		e.Pending++
	}
	b.mu.Unlock()
	return Result{Allowed: true, Wait: ahead, Ahead: ahead + t.Interval}
}

// find returns h's entry, taking one for it when it has none. b.mu is held.
func (b *bucket) find(h uint64, now int64) *Entry {
	victim := 0
	for i := range b.e {
		e := &b.e[i]
		if e.Hash == h {
			return e
		}
		v := &b.e[victim]
		// Prefer an empty entry, then the one whose TAT is earliest.
		if v.Hash != 0 && (e.Hash == 0 || e.TAT < v.TAT) {
			victim = i
		}
	}
	b.e[victim] = Entry{Hash: h, TAT: now}
	return &b.e[victim]
}

// Charge adds n requests admitted elsewhere to h's TAT and records seen,
// the cluster total read, when the table still knows h (an evicted key
// has nothing to slow down here).
func (t *Table) Charge(h uint64, n, seen, now int64) {
	b := &t.buckets[(h>>32^h)&t.mask]
	b.mu.Lock()
	for i := range b.e {
		if e := &b.e[i]; e.Hash == h {
			if n > 0 {
				e.TAT = max(e.TAT, now) + n*t.Interval
			}
			e.Seen = seen
			break
		}
	}
	b.mu.Unlock()
}

// Drain calls f for every entry with requests pending or seen before,
// under its bucket's lock; f may edit the entry (clear Pending, set Seen).
// Entries idle for longer than idle are skipped.
func (t *Table) Drain(now, idle int64, f func(e *Entry)) {
	for i := range t.buckets {
		b := &t.buckets[i]
		b.mu.Lock()
		for j := range b.e {
			e := &b.e[j]
			if e.Hash != 0 && (e.Pending > 0 || e.TAT+idle > now) {
				f(e)
			}
		}
		b.mu.Unlock()
	}
}

// Len is the table's capacity in keys.
func (t *Table) Len() int { return len(t.buckets) * ways }
