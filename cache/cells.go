package cache

import (
	"context"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/edgeproxy/edgeproxy/coupon"
)

// Cells are cached at two levels in process, both checked against the cell
// key's generations like every L1 entry:
//
//	L0  decoded coupon.Index values, shared by pointer: a hot search copies
//	    and decodes nothing
//	L1  bigcache "cell:{hash}": the index serialized, off the Go heap, so a
//	    cell dropped from L0 is rebuilt without a network trip

// maxBatch bounds the commands sent in one DoMultiCache round trip.
const maxBatch = 256

type cellMiss struct {
	index int // of the cell in the request's hashes
	stale *coupon.Index
	h     header
}

type cellScratch struct {
	key    []byte
	misses []cellMiss
}

// fresh applies the freshness rule to an entry derived from source.
func (s *Store) fresh(h header, source []byte, now int64) bool {
	return h.epoch == s.epoch.Load() && h.gen == s.stripeOf(source).Load() && now < h.expires
}

// Cells implements coupon.Store: cells fresh in L0 or L1 are visited at
// once; the rest are read from Redis (through rueidis's cache) in batches.
func (s *Store) Cells(hashes []byte, precision int, v coupon.CellVisitor) (coupon.Status, error) {
	sc := s.cellScratches.Get().(*cellScratch)
	defer func() {
		clear(sc.misses)
		sc.misses = sc.misses[:0]
		s.cellScratches.Put(sc)
	}()
	now := s.now()
	nowNs := now.UnixNano()
	n := len(hashes) / precision
	for i := 0; i < n; i++ {
		sc.key = append(append(sc.key[:0], "cell:"...), hashes[i*precision:(i+1)*precision]...)
		e, inL0 := s.l0.get(sc.key)
		if inL0 && s.fresh(e.h, sc.key, nowNs) {
			s.Stats.L0Hits.Add(1)
			if s.verifyQ != nil {
				s.sampleVerify(sc.key, e.h, nil, e.ix)
			}
			v.VisitCell(e.ix)
			continue
		}
		miss := cellMiss{index: i, stale: e.ix, h: e.h}
		if l := s.lookupL1(sc.key, sc.key, nowNs); l.ok {
			ix, err := coupon.DecodeIndex(l.payload)
			if err == nil && l.fresh {
				s.Stats.L1Hits.Add(1)
				s.l0.put(string(sc.key), l0Entry{h: l.h, ix: ix})
				if s.verifyQ != nil {
					s.sampleVerify(sc.key, l.h, nil, ix)
				}
				v.VisitCell(ix)
				continue
			}
			if err == nil && (!inL0 || l.h.fetched > e.h.fetched) {
				miss.stale, miss.h = ix, l.h
			}
		}
		sc.misses = append(sc.misses, miss)
	}
	if len(sc.misses) == 0 {
		return coupon.Hit, nil
	}
	st := coupon.Hit
	e0 := s.epoch.Load() // before the client: see topology.go
	cp := s.client.Load()
	pending := sc.misses
	if cp != nil && !s.recentlyFailed(now) {
		client := *cp
		for len(pending) > 0 {
			k := min(len(pending), maxBatch)
			batchSt, err := s.fetchCells(client, e0, hashes, precision, pending[:k], v)
			if err != nil {
				s.fail(err)
				break
			}
			st = max(st, batchSt)
			pending = pending[k:]
		}
		if len(pending) == 0 {
			return st, nil
		}
	}
	// Redis is failing: what is still missing is served stale, or not at all.
	for _, m := range pending {
		if m.stale == nil || !s.youngEnough(m.h, nowNs) {
			s.Stats.Unavailable.Add(1)
			return coupon.Stale, coupon.ErrUnavailable
		}
	}
	for _, m := range pending {
		v.VisitCell(m.stale)
	}
	s.Stats.Stale.Add(1)
	return coupon.Stale, nil
}

func (s *Store) fetchCells(client rueidis.Client, e0 uint64, hashes []byte, precision int, batch []cellMiss, v coupon.CellVisitor) (coupon.Status, error) {
	lost := s.lost.Load() // after e0: see streamState
	gens := make([]uint64, len(batch))
	keys := make([]string, len(batch))
	for i, m := range batch {
		keys[i] = s.o.KeyPrefix + ":cell:" + string(hashes[m.index*precision:(m.index+1)*precision])
		gens[i] = s.stripeFor(keys[i]).Load()
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.o.CommandTimeout)
	results := s.readCells(ctx, client, keys, lost)
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
		coupons := make([]coupon.Coupon, 0, len(fields))
		for id, raw := range fields {
			c, err := coupon.Parse([]byte(raw))
			if err != nil {
				s.Stats.BadCoupons.Add(1)
				s.log.Warn("skipping a coupon that is not valid JSON for SPEC §5", zap.String("key", keys[i]), zap.String("field", id), zap.Error(err))
				continue
			}
			coupons = append(coupons, c)
		}
		ix := coupon.NewIndex(coupons)
		h := header{epoch: e0, gen: gens[i], fetched: s.readAt(t, r), found: true}
		h.expires = s.degradedExpiry(s.expiry(t, r), h.fetched, lost)
		l1Key := keys[i][len(s.o.KeyPrefix)+1:] // "cell:{hash}"
		_ = s.l1.Set(l1Key, appendValue(make([]byte, 0, headerLen+ix.Bytes()), h, ix.AppendBinary(nil)))
		s.l0.put(l1Key, l0Entry{h: h, ix: ix})
		v.VisitCell(ix)
		if s.countFill(r) == coupon.Miss {
			st = coupon.Miss
		}
	}
	return st, nil
}

// readCells reads cells through rueidis's cache, or, while the stream is
// lost, from Redis itself (rueidis's cache missed the same pushes).
func (s *Store) readCells(ctx context.Context, client rueidis.Client, keys []string, lost bool) []rueidis.RedisResult {
	if lost {
		cmds := make(rueidis.Commands, len(keys))
		for i, k := range keys {
			cmds[i] = client.B().Hgetall().Key(k).Build()
		}
		return client.DoMulti(ctx, cmds...)
	}
	cmds := make([]rueidis.CacheableTTL, len(keys))
	for i, k := range keys {
		cmds[i] = rueidis.CT(client.B().Hgetall().Key(k).Cache(), s.o.TTL)
	}
	return client.DoMultiCache(ctx, cmds...)
}
