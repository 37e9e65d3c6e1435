// Package cache implements coupon.Store over two layers: an in-process
// bigcache (L1) holding what a request needs ready to serve, in front of
// rueidis server-assisted client-side caching (L2) of the Redis keys of
// SPEC §5. Redis invalidation pushes keep both fresh.
//
// Freshness rule: an L1 entry records the invalidation generation of its
// Redis key (a striped counter) and a global epoch as they were *before*
// the read that filled it. An invalidation bumps the key's stripe (and
// deletes the entry); a connection loss, FLUSHALL or anything after which
// pushes may have been missed bumps the epoch. An entry whose recorded
// generations differ from the live ones is never served fresh, so a fill
// that races an invalidation cannot leave a stale entry behind.
package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/allegro/bigcache/v3"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/edgeproxy/edgeproxy/coupon"
)

// Options configure a Store.
type Options struct {
	Addrs          []string
	Username       string
	Password       string
	DB             int
	KeyPrefix      string
	CommandTimeout time.Duration
	DialTimeout    time.Duration
	// MaxBytes bounds L1.
	MaxBytes int64
	// TTL is the longest an answer is served without being re-read.
	TTL time.Duration
	// StaleIfError is how old an answer may be served while Redis is
	// unreachable.
	StaleIfError time.Duration
	// Precision is the geohash precision; Redis's {prefix}:meta must agree.
	Precision int
	Logger    *zap.Logger
	Now       func() time.Time

	// SPEC §11. SentinelMaster set: Addrs are its Sentinels. TLS: see LoadTLS.
	SentinelMaster, SentinelUsername, SentinelPassword string
	TLS                                                bool
	TLSCAFile, TLSServerName                           string
	// Instance names this process's probe key; ProbeInterval 0: no probe.
	Instance                    string
	ProbeInterval, ProbeTimeout time.Duration
	OnStreamLoss                StreamLoss
	DegradedTTL                 time.Duration
	// VerifySample is the share of hits re-read in the background, at
	// most VerifyRate a second (0: 100).
	VerifySample float64
	VerifyRate   int
	// TopologyInterval is how often a cluster's slot ownership is polled
	// (topology.go); zero means DefaultTopologyInterval.
	TopologyInterval time.Duration
}

// ErrPrecisionMismatch: {prefix}:meta names another geohash precision.
var ErrPrecisionMismatch = errors.New("geohash precision mismatch")

const stripeCount = 1 << 14

// Store is safe for concurrent use. Close stops it.
type Store struct {
	o   Options
	log *zap.Logger
	now func() time.Time

	l0     *l0Cache
	l1     *bigcache.BigCache
	client atomic.Pointer[rueidis.Client] // nil until connected

	epoch   atomic.Uint64
	stripes [stripeCount]atomic.Uint64
	topo    topology

	// lost is set while the invalidation stream is lost (probe.go):
	// entries filled then expire early (degradedExpiry).
	lost    atomic.Bool
	probe   *prober        // nil without a probe
	verifyQ chan verifyJob // nil without verification
	lastErr atomic.Pointer[redisError]
	// lastResync is when the client was last replaced (unix ns).
	lastResync atomic.Int64

	// failedAt is when Redis last failed; for retryAfterError after it,
	// requests do not wait on Redis again and go straight to what is cached.
	failedAt atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Scratch space for the hot paths, per Store rather than per package.
	keyBufs       sync.Pool // of *keyBuf
	cellScratches sync.Pool // of *cellScratch

	flights flightMap // misses being read (flight.go)

	Stats Stats
}

// Stats are counters for metrics, safe to read at any time.
type Stats struct {
	L0Hits, L1Hits, L2Hits, Misses, Stale, Unavailable atomic.Uint64
	Invalidations, InvalidateAll, RedisErrors          atomic.Uint64
	BadCoupons                                         atomic.Uint64
	// SPEC §11: stream losses seen by the probe; verified hits.
	StreamLosses, VerifyMatch, VerifyMismatch, VerifyDropped atomic.Uint64
	// Coalesced counts coupons and cells a request took from another
	// request's Redis read of the same key (flight.go).
	Coalesced atomic.Uint64
}

var _ coupon.Store = (*Store)(nil)

// retryAfterError: after a failure Redis is not asked again for this long.
const retryAfterError = 250 * time.Millisecond

// New builds the store and connects to Redis. If Redis is unreachable the
// store still starts, answers ErrUnavailable (so the caller falls back) and
// keeps connecting in the background; a precision mismatch is an error.
func New(o Options) (*Store, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if _, err := baseOption(o, ""); err != nil {
		return nil, err // a CA file that cannot be used is a setup error
	}
	life := max(o.TTL, o.StaleIfError) + time.Minute
	cfg := bigcache.Config{
		Shards:             256,
		LifeWindow:         life.Truncate(time.Second),
		CleanWindow:        time.Minute,
		MaxEntriesInWindow: 1 << 16,
		MaxEntrySize:       512,
		HardMaxCacheSize:   int(max(o.MaxBytes>>20, 1)),
		StatsEnabled:       false, // it takes a write lock on every hit
		Verbose:            false,
	}
	l1, err := bigcache.New(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("bigcache: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{o: o, log: o.Logger, now: o.Now, l0: newL0Cache(o.MaxBytes / 4), l1: l1, ctx: ctx, cancel: cancel}
	s.keyBufs.New = func() any { return &keyBuf{b: make([]byte, 0, 192)} }
	s.cellScratches.New = func() any { return &cellScratch{} }
	// Set before the first connection: its reader goroutine reads them.
	if o.ProbeInterval > 0 {
		s.probe = newProber(o.KeyPrefix, o.Instance)
	}
	if o.VerifySample > 0 {
		s.verifyQ = make(chan verifyJob, 16)
	}
	client, err := s.connect()
	switch {
	case errors.Is(err, ErrPrecisionMismatch):
		cancel()
		l1.Close()
		return nil, err
	case err != nil:
		s.setLastErr(err)
		s.log.Warn("redis unreachable at start; coupon reads fall back until it answers", zap.Error(err))
		s.failedAt.Store(s.now().UnixNano())
		s.wg.Add(1)
		go s.reconnect()
	default:
		s.client.Store(&client)
	}
	if s.probe != nil {
		s.wg.Add(1)
		go s.probeLoop()
	}
	if s.verifyQ != nil {
		s.wg.Add(1)
		go s.verifyLoop()
	}
	s.wg.Add(1)
	go s.watchTopology()
	return s, nil
}

func (s *Store) connect() (rueidis.Client, error) {
	opt, err := baseOption(s.o, "edgeproxy")
	if err != nil {
		return nil, err
	}
	gate := s.newGate()
	if s.o.SentinelMaster == "" {
		opt.InitAddress = s.initAddrs() // the cluster's nodes known so far too
	}
	opt.OnInvalidations = gate.onInvalidations
	opt.ConnWriteTimeout = 3 * time.Second
	// A request never waits on rueidis's reconnect back-off: it has its
	// own deadline and falls back on the first failure.
	opt.DisableRetry = true
	opt.CacheSizeEachConn = 32 << 20
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, err
	}
	if err := CheckPrecision(s.ctx, client, s.o.KeyPrefix, s.o.Precision, s.o.CommandTimeout); err != nil {
		client.Close()
		return nil, err
	}
	s.registerGate(client, gate)
	return client, nil
}

// reconnect retries connecting until it succeeds or the store closes.
func (s *Store) reconnect() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		client, err := s.connect()
		if err == nil {
			s.epoch.Add(1)
			s.client.Store(&client)
			s.log.Info("redis connected")
			return
		}
		s.setLastErr(err)
		if errors.Is(err, ErrPrecisionMismatch) {
			s.log.Error("redis has another geohash precision; coupon reads stay on the fallback", zap.Error(err))
		} else if err.Error() != last {
			s.log.Warn("redis still unreachable; coupon reads fall back", zap.Error(err))
		}
		last = err.Error()
	}
}

// CheckPrecision compares {prefix}:meta precision with want; a missing
// meta key (an empty store) passes.
func CheckPrecision(ctx context.Context, client rueidis.Client, prefix string, want int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	key := prefix + ":meta"
	v, err := client.Do(ctx, client.B().Hget().Key(key).Field("precision").Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, err)
	}
	if v != strconv.Itoa(want) {
		return fmt.Errorf("%w: %s precision is %s but coupon.geohash_precision is %d; set geohash_precision = %s, or re-import the coupons with this precision into an empty key_prefix",
			ErrPrecisionMismatch, key, v, want, v)
	}
	return nil
}

// Close stops background work and closes the Redis client and L1.
func (s *Store) Close() error {
	s.cancel()
	s.wg.Wait()
	if c := s.client.Load(); c != nil {
		(*c).Close()
	}
	return s.l1.Close()
}

// Connected reports whether a Redis client is established and answering.
func (s *Store) Connected() bool {
	return s.client.Load() != nil && !s.recentlyFailed(s.now())
}

// onInvalidations runs on a rueidis connection's reader goroutine, once
// per connection, concurrently: it only bumps counters and deletes.
func (s *Store) onInvalidations(keys []rueidis.RedisMessage) {
	if keys == nil {
		// FLUSHALL, or a connection that closed: pushes may be lost.
		s.epoch.Add(1)
		s.Stats.InvalidateAll.Add(1)
		return
	}
	for i := range keys {
		k, err := keys[i].ToString()
		if err != nil {
			continue
		}
		if s.probe != nil && s.probe.isProbeKey(k) {
			s.probe.arrived(k) // not a coupon: kept out of the counts
			continue
		}
		s.Stats.Invalidations.Add(1)
		s.stripeFor(k).Add(1)
		if l1, ok := s.l1KeyOf(k); ok {
			_ = s.l1.Delete(l1)
			s.l0.delete(l1)
		}
	}
}

// L1 keys are the Redis key without the prefix: "id:X" and "cell:X".
func (s *Store) l1KeyOf(redisKey string) (string, bool) {
	p := s.o.KeyPrefix
	if len(redisKey) > len(p) && redisKey[:len(p)] == p && redisKey[len(p)] == ':' {
		return redisKey[len(p)+1:], true
	}
	return "", false
}

// stripeFor hashes a whole Redis key; stripeOf hashes one in pieces, so the
// hot path finds the same stripe without building the key.
func (s *Store) stripeFor(redisKey string) *atomic.Uint64 {
	return &s.stripes[fnv(fnvOffset, redisKey)&(stripeCount-1)]
}

func (s *Store) stripeOf(l1Key []byte) *atomic.Uint64 {
	h := fnv(fnvOffset, s.o.KeyPrefix)
	h = fnv(h, ":")
	h = fnv(h, view(l1Key))
	return &s.stripes[h&(stripeCount-1)]
}

const fnvOffset = 14695981039346656037

func fnv(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// An L1 value: epoch | generation | fetched (unix ns) | expires (unix ns) |
// found (1 byte) | payload.
const headerLen = 8 + 8 + 8 + 8 + 1

type header struct {
	epoch, gen       uint64
	fetched, expires int64
	found            bool
}

func appendValue(dst []byte, h header, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, h.epoch)
	dst = binary.LittleEndian.AppendUint64(dst, h.gen)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(h.fetched))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(h.expires))
	f := byte(0)
	if h.found {
		f = 1
	}
	dst = append(dst, f)
	return append(dst, payload...)
}

func parseValue(v []byte) (header, []byte, bool) {
	if len(v) < headerLen {
		return header{}, nil, false
	}
	return header{
		epoch:   binary.LittleEndian.Uint64(v[0:]),
		gen:     binary.LittleEndian.Uint64(v[8:]),
		fetched: int64(binary.LittleEndian.Uint64(v[16:])),
		expires: int64(binary.LittleEndian.Uint64(v[24:])),
		found:   v[32] == 1,
	}, v[headerLen:], true
}

// lookup is what L1 holds for a key: fresh, stale (kept for errors) or none.
type lookup struct {
	h       header
	payload []byte
	ok      bool // an entry exists
	fresh   bool
}

// lookupL1 reads key, fresh while its generations match those of the Redis
// key it derives from (source, as an L1 key: "id:X" or "cell:X").
func (s *Store) lookupL1(key, source []byte, now int64) lookup {
	v, err := s.l1.Get(view(key))
	if err != nil {
		return lookup{}
	}
	h, payload, ok := parseValue(v)
	if !ok {
		return lookup{}
	}
	return lookup{h: h, payload: payload, ok: true, fresh: s.fresh(h, source, now)}
}

// servableStale: while Redis fails, an entry up to StaleIfError old serves.
func (s *Store) servableStale(l lookup, now int64) bool {
	return l.ok && s.youngEnough(l.h, now)
}

func (s *Store) youngEnough(h header, now int64) bool {
	return now-h.fetched <= int64(s.o.StaleIfError)
}

func (s *Store) recentlyFailed(now time.Time) bool {
	return now.UnixNano()-s.failedAt.Load() < int64(retryAfterError)
}

func (s *Store) fail(err error) {
	s.Stats.RedisErrors.Add(1)
	s.setLastErr(err)
	s.failedAt.Store(s.now().UnixNano())
	s.log.Debug("redis read failed", zap.Error(err))
}

// expiry is when a value read now stops being fresh: the TTL, or earlier
// if rueidis's own cached copy was already older.
func (s *Store) expiry(now time.Time, r rueidis.RedisResult) int64 {
	exp := now.Add(s.o.TTL).UnixNano()
	if pxat := r.CachePXAT(); pxat > 0 && pxat*int64(time.Millisecond) < exp {
		exp = pxat * int64(time.Millisecond)
	}
	return exp
}

// keyBuf is a pooled buffer for building keys on the hot path.
type keyBuf struct{ b []byte }

// Coupon implements coupon.Store.
func (s *Store) Coupon(id []byte) ([]byte, coupon.Status, error) {
	kb := s.keyBufs.Get().(*keyBuf)
	defer s.keyBufs.Put(kb)
	key := append(append(kb.b[:0], "id:"...), id...)
	kb.b = key
	now := s.now()
	nowNs := now.UnixNano()
	if e, ok := s.l0.get(key); ok && s.fresh(e.h, key, nowNs) {
		s.Stats.L0Hits.Add(1)
		if s.verifyQ != nil {
			s.sampleVerify(key, e.h, e.raw, nil)
		}
		return e.raw, coupon.Hit, nil
	}
	l := s.lookupL1(key, key, nowNs)
	if l.fresh {
		s.Stats.L1Hits.Add(1)
		s.l0.put(string(key), l0Entry{h: l.h, raw: found(l)})
		if s.verifyQ != nil {
			s.sampleVerify(key, l.h, found(l), nil)
		}
		return found(l), coupon.Hit, nil
	}
	since := s.flights.seq.Load() // before the snapshot: see flight.go
	// The epoch before the client: topology.go swaps in the opposite order.
	e0 := s.epoch.Load()
	cp := s.client.Load()
	if cp == nil || s.recentlyFailed(now) {
		return s.staleCoupon(l, now)
	}
	client := *cp
	g0 := s.stripeOf(key).Load()
	redisKey := s.o.KeyPrefix + ":" + string(key)
	l1Key := redisKey[len(s.o.KeyPrefix)+1:]
	lost := s.lost.Load() // after e0: see streamState
	f, lead := s.flights.join(l1Key, flightSnap{epoch: e0, gen: g0, lost: lost}, s.flightSince(since, lost))
	if !lead {
		return s.joinedCoupon(f, l, now)
	}
	defer s.flights.finish(l1Key, f)
	// A flight that finished between this request's lookup and its join
	// left a fresh entry: serve it rather than read Redis again.
	if l := s.lookupL1(key, key, s.now().UnixNano()); l.fresh {
		s.Stats.L1Hits.Add(1)
		f.h, f.raw, f.st, f.err = l.h, found(l), coupon.Hit, nil
		return found(l), coupon.Hit, nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.o.CommandTimeout)
	var res rueidis.RedisResult
	if lost {
		// rueidis's cache missed the same pushes: read Redis itself.
		res = client.Do(ctx, client.B().Get().Key(redisKey).Build())
	} else {
		res = client.DoCache(ctx, client.B().Get().Key(redisKey).Cache(), s.o.TTL)
	}
	cancel()
	raw, err := res.AsBytes()
	notFound := rueidis.IsRedisNil(err)
	if err != nil && !notFound {
		f.err = err
		s.fail(err)
		return s.staleCoupon(l, now)
	}
	st := s.countFill(res)
	h := header{epoch: e0, gen: g0, fetched: s.readAt(now, res), found: !notFound}
	h.expires = s.degradedExpiry(s.expiry(now, res), h.fetched, lost)
	_ = s.l1.Set(l1Key, appendValue(make([]byte, 0, headerLen+len(raw)), h, raw))
	if notFound {
		raw = nil
	}
	f.h, f.raw, f.st, f.err = h, raw, st, nil
	return raw, st, nil
}

// joinedCoupon answers from the read of another request that missed the
// same coupon (flight.go), or as if its own read had failed.
func (s *Store) joinedCoupon(f *flight, l lookup, now time.Time) ([]byte, coupon.Status, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.o.CommandTimeout)
	ok := f.wait(ctx)
	cancel()
	if !ok {
		return s.staleCoupon(l, now)
	}
	s.Stats.Coalesced.Add(1)
	return f.raw, f.st, nil
}

func found(l lookup) []byte {
	if !l.h.found {
		return nil
	}
	return l.payload
}

func (s *Store) staleCoupon(l lookup, now time.Time) ([]byte, coupon.Status, error) {
	if s.servableStale(l, now.UnixNano()) {
		s.Stats.Stale.Add(1)
		return found(l), coupon.Stale, nil
	}
	s.Stats.Unavailable.Add(1)
	return nil, coupon.Stale, coupon.ErrUnavailable
}

func (s *Store) countFill(res rueidis.RedisResult) coupon.Status {
	if res.IsCacheHit() {
		s.Stats.L2Hits.Add(1)
		return coupon.Hit
	}
	s.Stats.Misses.Add(1)
	return coupon.Miss
}
