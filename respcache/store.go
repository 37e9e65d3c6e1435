// Package respcache holds the response cache's memory (SPEC §10): entries
// in a bigcache bounded by its share of [cache] max_bytes, and the purge
// channel that reaches every instance through Redis pub/sub. What an entry
// means (RFC 9111) is the proxy's business; here entries are bytes.
package respcache

import (
	"context"
	"fmt"
	"math/bits"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/allegro/bigcache/v3"
)

// Options size the store.
type Options struct {
	// MaxBytes is the response share of [cache] max_bytes; the store never
	// holds more entry bytes than this (bigcache HardMaxCacheSize).
	MaxBytes int64
	// MaxEntryBytes is the largest entry stored (a body up to the routes'
	// largest max_body plus its head); shards are sized to take it.
	MaxEntryBytes int64
}

// Store is the in-process response store, safe for concurrent use.
type Store struct {
	bc    *bigcache.BigCache
	Stats Stats
}

// Stats are counters for metrics and /status.
type Stats struct {
	Sets, Rejected, Purges, PurgedEntries, Resyncs atomic.Uint64
}

// New builds an empty store. bigcache keeps every shard within
// MaxBytes/shards, so the shard count is chosen to leave each shard room
// for four of the largest entries.
func New(o Options) (*Store, error) {
	mb := max(int(o.MaxBytes>>20), 1)
	entryMB := max(int((o.MaxEntryBytes+1<<20-1)>>20), 1)
	shards := 1 << (bits.Len(uint(max(mb/(4*entryMB), 1))) - 1)
	shards = min(shards, 256)
	cfg := bigcache.Config{
		Shards:             shards,
		LifeWindow:         365 * 24 * time.Hour, // entries carry their own freshness; eviction is by size
		CleanWindow:        0,
		MaxEntriesInWindow: 64 * shards, // initial queues of 64 KiB a shard; they grow up to the budget
		MaxEntrySize:       1024,
		HardMaxCacheSize:   mb,
		StatsEnabled:       false,
		Verbose:            false,
	}
	bc, err := bigcache.New(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("response cache: %w", err)
	}
	return &Store{bc: bc}, nil
}

// str views b as a string without copying: bigcache hashes the key and
// copies it into its own queue, and keeps no reference to it.
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// Get returns the entry stored under key (a copy the caller owns).
func (s *Store) Get(key []byte) ([]byte, bool) {
	v, err := s.bc.Get(str(key))
	return v, err == nil
}

// Set stores value under key; a value too large for a shard is refused
// and counted, never an error to the request.
func (s *Store) Set(key, value []byte) {
	if err := s.bc.Set(str(key), value); err != nil {
		s.Stats.Rejected.Add(1)
		return
	}
	s.Stats.Sets.Add(1)
}

// Delete removes key.
func (s *Store) Delete(key []byte) {
	if s.bc.Delete(str(key)) == nil {
		s.Stats.PurgedEntries.Add(1)
	}
}

// DeletePrefix removes every key starting with prefix. It walks the whole
// store: purges are rare and operator-driven.
func (s *Store) DeletePrefix(prefix []byte) {
	var keys []string
	it := s.bc.Iterator()
	for it.SetNext() {
		e, err := it.Value()
		if err == nil && strings.HasPrefix(e.Key(), string(prefix)) {
			keys = append(keys, e.Key())
		}
	}
	for _, k := range keys {
		if s.bc.Delete(k) == nil {
			s.Stats.PurgedEntries.Add(1)
		}
	}
}

// Reset drops every entry: what an instance cannot prove fresh after it
// missed purges.
func (s *Store) Reset() {
	s.bc.Reset()
	s.Stats.Resyncs.Add(1)
}

// Len is the number of entries; Bytes the memory their queues hold.
func (s *Store) Len() int   { return s.bc.Len() }
func (s *Store) Bytes() int { return s.bc.Capacity() }

// Close frees the store.
func (s *Store) Close() error { return s.bc.Close() }
