package cache

import (
	"time"

	"github.com/redis/rueidis"
)

// StreamLoss says what the store does while the invalidation stream is
// lost (SPEC §11 on_stream_loss).
type StreamLoss int

const (
	// Bypass answers from Redis reads, not memory (X-Cache: MISS).
	Bypass StreamLoss = iota
	// Serve keeps serving memory, each entry only while younger than
	// DegradedTTL counted from its read.
	Serve
)

func (m StreamLoss) String() string {
	if m == Serve {
		return "serve"
	}
	return "bypass"
}

// redisError is the last Redis error seen, for /readyz.
type redisError struct {
	text string
	at   time.Time
}

func (s *Store) setLastErr(err error) {
	if err == nil {
		return
	}
	s.lastErr.Store(&redisError{text: err.Error(), at: s.now()})
}

// LastError is the text of the last Redis error and when it happened;
// "" when there was none.
func (s *Store) LastError() (string, time.Time) {
	if e := s.lastErr.Load(); e != nil {
		return e.text, e.at
	}
	return "", time.Time{}
}

// degradedExpiry is an entry's expiry when it was filled while the stream
// was lost: under "bypass" it is never fresh (answers come from Redis
// reads); under "serve" it lives degraded_ttl from its read. Entries from
// before the loss were retired by the epoch when it was found.
func (s *Store) degradedExpiry(expires, fetched int64, lost bool) int64 {
	if !lost {
		return expires
	}
	if s.o.OnStreamLoss == Serve {
		return min(expires, fetched+int64(s.o.DegradedTTL))
	}
	return 0
}

// StreamLost reports whether the store is in its degraded mode.
func (s *Store) StreamLost() bool { return s.lost.Load() }

// readAt is when the value in r was read from Redis: now, or for an answer
// from rueidis's own cache the latest time its expiry allows (its TTL was
// the store's), so an age counted from it is never too young.
func (s *Store) readAt(now time.Time, r rueidis.RedisResult) int64 {
	t := now.UnixNano()
	if r.IsCacheHit() {
		if pxat := r.CachePXAT(); pxat > 0 {
			t = min(t, pxat*int64(time.Millisecond)-int64(s.o.TTL))
		}
	}
	return t
}
