package cache

import (
	"bytes"
	"context"
	"math/rand/v2"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/edgeproxy/edgeproxy/coupon"
)

// Verification (SPEC §11, verify_sample): a sampled hit hands its entry to
// one background worker, which re-reads the Redis key (a plain read, past
// rueidis's cache) and compares byte for byte. Requests never wait: the
// hand-over is a non-blocking send to a short queue, and the worker takes
// at most VerifyRate jobs a second, so a storm of hits drops samples
// instead of becoming a storm of Redis reads.

// verifyGrace is how long a differing re-read waits for an invalidation
// still on its way (SPEC §6: a write shows within 100 ms) before it counts.
const verifyGrace = 100 * time.Millisecond

type verifyJob struct {
	key string // L1 key: "id:X" or "cell:X"
	h   header
	raw []byte        // id entries: the JSON (nil: absent)
	ix  *coupon.Index // cell entries
}

// sampleVerify is called on a hit when verification is on; key is only
// read here, raw and ix are never modified by anyone.
func (s *Store) sampleVerify(key []byte, h header, raw []byte, ix *coupon.Index) {
	if rand.Float64() >= s.o.VerifySample {
		return
	}
	select {
	case s.verifyQ <- verifyJob{key: string(key), h: h, raw: raw, ix: ix}:
	default:
		s.Stats.VerifyDropped.Add(1)
	}
}

func (s *Store) verifyLoop() {
	defer s.wg.Done()
	rate := s.o.VerifyRate
	if rate <= 0 {
		rate = 100
	}
	t := time.NewTicker(time.Second / time.Duration(rate))
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case j := <-s.verifyQ:
			s.verifyOne(j)
		}
		select { // the rate bound
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Store) verifyOne(j verifyJob) {
	cp := s.client.Load()
	if cp == nil {
		return
	}
	client := *cp
	redisKey := s.o.KeyPrefix + ":" + j.key
	stripe := s.stripeFor(redisKey)
	if s.epoch.Load() != j.h.epoch || stripe.Load() != j.h.gen {
		return // invalidated since the hit: nothing served from it any more
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.o.CommandTimeout)
	var same bool
	var err error
	if j.ix != nil {
		same, err = s.sameCell(ctx, client, redisKey, j.ix)
	} else {
		same, err = s.sameCoupon(ctx, client, redisKey, j)
	}
	cancel()
	if err != nil {
		s.setLastErr(err)
		return
	}
	if same {
		s.Stats.VerifyMatch.Add(1)
		return
	}
	// Different: it counts only if no invalidation of the key arrived
	// during the re-read, nor within the freshness bound after it.
	t := time.NewTimer(verifyGrace)
	select {
	case <-t.C:
	case <-s.ctx.Done():
		t.Stop()
		return
	}
	if s.epoch.Load() != j.h.epoch || stripe.Load() != j.h.gen {
		return
	}
	// Never serve it again. rueidis's cache holds the same stale value, so
	// the client is replaced too, at most once per resyncEvery; between
	// those the entry alone is dropped.
	stripe.Add(1)
	_ = s.l1.Delete(j.key)
	s.l0.delete(j.key)
	if s.now().UnixNano()-s.lastResync.Load() >= int64(resyncEvery) {
		if err := s.resync(nil); err != nil {
			s.log.Warn("resync after a mismatch failed", zap.Error(err))
		}
	}
	age := time.Duration(s.now().UnixNano() - j.h.fetched)
	s.log.Warn("cached coupon entry differs from Redis", zap.String("key", redisKey), zap.Duration("age", age))
	s.Stats.VerifyMismatch.Add(1)
}

// resyncEvery bounds how often mismatches replace the Redis client.
const resyncEvery = 5 * time.Second

func (s *Store) sameCoupon(ctx context.Context, client rueidis.Client, redisKey string, j verifyJob) (bool, error) {
	v, err := client.Do(ctx, client.B().Get().Key(redisKey).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return !j.h.found, nil
	}
	if err != nil {
		return false, err
	}
	return j.h.found && bytes.Equal(v, j.raw), nil
}

func (s *Store) sameCell(ctx context.Context, client rueidis.Client, redisKey string, ix *coupon.Index) (bool, error) {
	fields, err := client.Do(ctx, client.B().Hgetall().Key(redisKey).Build()).AsStrMap()
	if err != nil {
		return false, err
	}
	n := 0
	for i := 0; i < ix.Len(); i++ {
		raw, ok := fields[string(ix.ID(i))]
		if !ok || raw != string(ix.Raw(i)) {
			return false, nil
		}
		n++
	}
	// Fields the index skipped as invalid JSON are counted in BadCoupons,
	// not as a difference.
	return n == len(fields)-s.invalidIn(fields, n), nil
}

// invalidIn counts the fields of a cell that are not valid coupons, when
// the cell holds more fields than the index.
func (s *Store) invalidIn(fields map[string]string, indexed int) int {
	if len(fields) == indexed {
		return 0
	}
	bad := 0
	for _, raw := range fields {
		if _, err := coupon.Parse([]byte(raw)); err != nil {
			bad++
		}
	}
	return bad
}
