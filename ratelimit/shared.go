package ratelimit

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/edgeproxy/edgeproxy/internal/gcra"
	"github.com/edgeproxy/edgeproxy/proxy"
)

// maxBatch bounds the keys exchanged per sync; beyond it the busiest are
// not chosen, the first found are (their counts wait for the next sync).
const maxBatch = 10000

// counterTTL: a key's Redis counter lives this long after its last change.
const counterTTL = time.Minute

// shared decides locally and exchanges counts in the background (doc.go).
type shared struct {
	l        *Limiters
	prefix   string
	t        *gcra.Table
	degraded atomic.Bool // the last exchange failed: decisions are local only

	// Exchange scratch, used by run only.
	batch []pending
	cmds  rueidis.Commands
	key   []byte
}

type pending struct {
	h    uint64
	n    int64
	seen int64 // cluster total last read + 1; 0: never read
}

func newShared(l *Limiters, prefix string, o proxy.RateLimitOptions) *shared {
	maxKeys := o.MaxKeys
	if maxKeys <= 0 {
		maxKeys = 65536
	}
	s := &shared{l: l, prefix: prefix, t: gcra.New(maxKeys, int64(o.Interval()), o.Burst)}
	s.degraded.Store(l.redis() == nil)
	return s
}

func (s *shared) Take(key []byte, now time.Time) proxy.RateDecision {
	r := s.t.Take(gcra.Hash(key), now.UnixNano(), true)
	return proxy.RateDecision{Allowed: r.Allowed, Wait: time.Duration(r.Wait), Fallback: s.degraded.Load()}
}

func (s *shared) run() {
	defer s.l.wg.Done()
	t := time.NewTicker(s.l.o.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.l.ctx.Done():
			return
		case <-t.C:
		}
		s.exchange(time.Now().UnixNano())
	}
}

// exchange pushes this instance's admissions per key and charges the
// others' to the table.
func (s *shared) exchange(now int64) {
	s.batch = s.batch[:0]
	s.t.Drain(now, int64(time.Second), func(e *gcra.Entry) {
		if len(s.batch) < maxBatch {
			s.batch = append(s.batch, pending{h: e.Hash, n: e.Pending, seen: e.Seen})
			e.Pending = 0
		}
	})
	if len(s.batch) == 0 {
		return
	}
	c := s.l.redis()
	if c == nil {
		s.degraded.Store(true)
		return
	}
	s.cmds = s.cmds[:0]
	for _, p := range s.batch {
		s.key = append(s.key[:0], s.prefix...)
		s.key = strconv.AppendUint(s.key, p.h, 16)
		k := string(s.key)
		s.cmds = append(s.cmds, c.B().Incrby().Key(k).Increment(p.n).Build(),
			c.B().Pexpire().Key(k).Milliseconds(counterTTL.Milliseconds()).Build())
	}
	ctx, cancel := context.WithTimeout(s.l.ctx, s.l.o.CommandTimeout+s.l.o.SyncInterval)
	res := c.DoMulti(ctx, s.cmds...)
	cancel()
	failed := false
	for i, p := range s.batch {
		total, err := res[2*i].AsInt64()
		if err != nil {
			failed = true
			continue
		}
		var others int64
		if p.seen > 0 && total >= p.seen-1+p.n {
			others = total - (p.seen - 1) - p.n
		}
		s.t.Charge(p.h, others, total+1, now)
	}
	if failed != s.degraded.Load() {
		if failed {
			s.l.log.Warn("rate limit counts not exchanged: redis unreachable; deciding locally")
		} else {
			s.l.log.Info("rate limit counts exchanged again", zap.String("limiter", s.prefix))
		}
	}
	s.degraded.Store(failed)
}
