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
	// Set once Redis is asked: the cell's read, whether this request leads
	// it (flight.go), and whether it gave the cell's index.
	f        *flight
	lead, ok bool
}

type cellScratch struct {
	key    []byte
	misses []cellMiss
	keys   []string  // Redis keys of the cells a request leads
	leads  []*flight // their flights
}

// fresh applies the freshness rule to an entry derived from source.
func (s *Store) fresh(h header, source []byte, now int64) bool {
	return h.epoch == s.epoch.Load() && h.gen == s.stripeOf(source).Load() && now < h.expires
}

// Cells implements coupon.Store: cells fresh in L0 or L1 are visited at
// once; the rest are read from Redis (through rueidis's cache) in batches,
// each cell once however many requests miss it at the same time.
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
	since := s.flights.seq.Load() // before the snapshot: see flight.go
	e0 := s.epoch.Load()          // before the client: see topology.go
	cp := s.client.Load()
	if cp != nil && !s.recentlyFailed(now) {
		s.missedCells(*cp, since, e0, hashes, precision, sc)
	}
	// What Redis did not give (it is failing) is served stale, or not at all.
	st := coupon.Hit
	stale := false
	for _, m := range sc.misses {
		switch {
		case m.ok:
			st = max(st, m.f.st)
		case m.stale == nil || !s.youngEnough(m.h, nowNs):
			s.Stats.Unavailable.Add(1)
			return coupon.Stale, coupon.ErrUnavailable
		default:
			stale = true
		}
	}
	for _, m := range sc.misses {
		if m.ok {
			v.VisitCell(m.f.ix)
		} else {
			v.VisitCell(m.stale)
		}
	}
	if stale {
		s.Stats.Stale.Add(1)
		return coupon.Stale, nil
	}
	return st, nil
}

// missedCells reads the request's missing cells from Redis, in batches,
// each only once however many requests miss it at the same time: the cells
// another request is reading already are waited for (flight.go). It sets
// each miss's ok.
func (s *Store) missedCells(client rueidis.Client, since, e0 uint64, hashes []byte, precision int, sc *cellScratch) {
	lost := s.lost.Load() // after e0: see streamState
	since = s.flightSince(since, lost)
	keys, leads := sc.keys[:0], sc.leads[:0]
	finishRest := func() { // the flights a failure left unread
		for i := range leads {
			if leads[i] != nil {
				s.flights.finish(keys[i][len(s.o.KeyPrefix)+1:], leads[i])
				leads[i] = nil
			}
		}
	}
	defer func() {
		finishRest()
		clear(keys)
		clear(leads)
		sc.keys, sc.leads = keys[:0], leads[:0]
	}()
	for i := range sc.misses {
		m := &sc.misses[i]
		key := s.o.KeyPrefix + ":cell:" + string(hashes[m.index*precision:(m.index+1)*precision])
		snap := flightSnap{epoch: e0, gen: s.stripeFor(key).Load(), lost: lost}
		l1Key := key[len(s.o.KeyPrefix)+1:]
		m.f, m.lead = s.flights.join(l1Key, snap, since)
		if !m.lead {
			continue
		}
		// A flight that finished between this request's lookup and its
		// join left the cell fresh in L0: take it rather than read again.
		sc.key = append(sc.key[:0], l1Key...)
		if e, ok := s.l0.get(sc.key); ok && e.ix != nil && s.fresh(e.h, sc.key, s.now().UnixNano()) {
			s.Stats.L0Hits.Add(1)
			m.f.h, m.f.ix, m.f.st, m.f.err = e.h, e.ix, coupon.Hit, nil
			s.flights.finish(l1Key, m.f)
			continue
		}
		keys, leads = append(keys, key), append(leads, m.f)
	}
	// Each batch's flights finish as soon as it is read: two requests
	// each waiting for a cell the other reads must not wait for each other.
	failed := false
	for b := 0; b < len(leads); b += maxBatch {
		e := min(b+maxBatch, len(leads))
		err := s.fetchCells(client, lost, keys[b:e], leads[b:e])
		for i := b; i < e; i++ {
			s.flights.finish(keys[i][len(s.o.KeyPrefix)+1:], leads[i])
			leads[i] = nil
		}
		if err != nil {
			s.fail(err)
			failed = true
			break // the rest fail too: they fall back without waiting
		}
	}
	finishRest()
	var ctx context.Context
	if failed { // Redis is failing: take only the reads already done
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(s.ctx)
		cancel()
	}
	for i := range sc.misses {
		m := &sc.misses[i]
		if m.lead {
			m.ok = m.f.err == nil
			continue
		}
		if ctx == nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(s.ctx, s.o.CommandTimeout)
			defer cancel()
		}
		if m.ok = m.f.wait(ctx); m.ok {
			s.Stats.Coalesced.Add(1)
		}
	}
}

// fetchCells reads and decodes the cells of keys, stores them in L1 and
// L0, and sets the result of each one's flight in fs.
func (s *Store) fetchCells(client rueidis.Client, lost bool, keys []string, fs []*flight) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.o.CommandTimeout)
	results := s.readCells(ctx, client, keys, lost)
	cancel()
	for _, r := range results {
		if err := r.Error(); err != nil {
			return err
		}
	}
	t := s.now()
	for i, r := range results {
		fields, err := r.AsStrMap()
		if err != nil {
			return err
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
		f := fs[i]
		h := header{epoch: f.snap.epoch, gen: f.snap.gen, fetched: s.readAt(t, r), found: true}
		h.expires = s.degradedExpiry(s.expiry(t, r), h.fetched, lost)
		l1Key := keys[i][len(s.o.KeyPrefix)+1:] // "cell:{hash}"
		_ = s.l1.Set(l1Key, appendValue(make([]byte, 0, headerLen+ix.Bytes()), h, ix.AppendBinary(nil)))
		s.l0.put(l1Key, l0Entry{h: h, ix: ix})
		f.h, f.ix, f.st, f.err = h, ix, s.countFill(r), nil
	}
	return nil
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
