package cache

import (
	"context"
	"sync"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/edgeproxy/edgeproxy/coupon"
)

// maxBatch bounds the commands sent in one DoMultiCache round trip.
const maxBatch = 256

type cellMiss struct {
	off int // of the hash in the request's hashes
	l   lookup
}

type cellScratch struct {
	key    []byte
	misses []cellMiss
}

var cellScratches = sync.Pool{New: func() any { return &cellScratch{} }}

// Cells implements coupon.Store: fresh L1 cells are visited in place; the
// rest are read from Redis (through rueidis's cache) in batches.
func (s *Store) Cells(hashes []byte, precision int, v coupon.CellVisitor) (coupon.Status, error) {
	sc := cellScratches.Get().(*cellScratch)
	defer func() {
		clear(sc.misses)
		sc.misses = sc.misses[:0]
		cellScratches.Put(sc)
	}()
	now := s.now()
	nowNs := now.UnixNano()
	for off := 0; off+precision <= len(hashes); off += precision {
		sc.key = append(append(sc.key[:0], "cell:"...), hashes[off:off+precision]...)
		l := s.lookupL1(sc.key, nowNs)
		if l.fresh {
			s.Stats.L1Hits.Add(1)
			v.VisitCell(l.payload)
			continue
		}
		sc.misses = append(sc.misses, cellMiss{off: off, l: l})
	}
	if len(sc.misses) == 0 {
		return coupon.Hit, nil
	}
	st := coupon.Hit
	cp := s.client.Load()
	pending := sc.misses
	if cp != nil && !s.recentlyFailed(now) {
		client := *cp
		for len(pending) > 0 {
			n := min(len(pending), maxBatch)
			batchSt, err := s.fetchCells(client, hashes, precision, pending[:n], v)
			if err != nil {
				s.fail(err)
				break
			}
			st = coupon.Status(max(uint8(st), uint8(batchSt)))
			pending = pending[n:]
		}
		if len(pending) == 0 {
			return st, nil
		}
	}
	// Redis is failing: what is still missing is served stale, or not at all.
	for _, m := range pending {
		if !s.servableStale(m.l, nowNs) {
			s.Stats.Unavailable.Add(1)
			return coupon.Stale, coupon.ErrUnavailable
		}
	}
	for _, m := range pending {
		v.VisitCell(m.l.payload)
	}
	s.Stats.Stale.Add(1)
	return coupon.Stale, nil
}

func (s *Store) fetchCells(client rueidis.Client, hashes []byte, precision int, batch []cellMiss, v coupon.CellVisitor) (coupon.Status, error) {
	e0 := s.epoch.Load()
	gens := make([]uint64, len(batch))
	keys := make([]string, len(batch))
	cmds := make([]rueidis.CacheableTTL, len(batch))
	for i, m := range batch {
		keys[i] = s.o.KeyPrefix + ":cell:" + string(hashes[m.off:m.off+precision])
		gens[i] = s.stripeFor(keys[i]).Load()
		cmds[i] = rueidis.CT(client.B().Hgetall().Key(keys[i]).Cache(), s.o.TTL)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.o.CommandTimeout)
	results := client.DoMultiCache(ctx, cmds...)
	cancel()
	for _, r := range results {
		if err := r.Error(); err != nil {
			return coupon.Stale, err
		}
	}
	st := coupon.Hit
	t := s.now()
	for i, r := range results {
		fields, err := r.AsStrMap()
		if err != nil {
			return coupon.Stale, err
		}
		var entries []byte
		for id, raw := range fields {
			c, err := coupon.Parse([]byte(raw))
			if err != nil {
				s.Stats.BadCoupons.Add(1)
				s.log.Warn("skipping a coupon that is not valid JSON for SPEC §5", zap.String("key", keys[i]), zap.String("field", id), zap.Error(err))
				continue
			}
			entries = coupon.AppendEntry(entries, &c)
		}
		h := header{epoch: e0, gen: gens[i], fetched: t.UnixNano(), expires: s.expiry(t, r), found: true}
		_ = s.l1.Set(keys[i][len(s.o.KeyPrefix)+1:], appendValue(make([]byte, 0, headerLen+len(entries)), h, entries))
		v.VisitCell(entries)
		if s.countFill(r) == coupon.Miss {
			st = coupon.Miss
		}
	}
	return st, nil
}
