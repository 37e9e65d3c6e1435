package proxy

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgeproxy/edgeproxy/internal/vars"
)

// ResponseStore is the response cache's memory (respcache.Store): bytes
// by key, bounded by its share of [cache] max_bytes. One store serves
// every cached route of every state, so a reload keeps what is cached.
type ResponseStore interface {
	Get(key []byte) ([]byte, bool)
	Set(key, value []byte)
	Delete(key []byte)
	DeletePrefix(prefix []byte)
	Reset()
}

// CacheOptions are a route's cache table (SPEC §10).
type CacheOptions struct {
	Enabled              bool
	Key                  string // template; default "$scheme$host$request_uri"
	MaxAge               time.Duration
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration
	Lock                 bool
	Bypass               []string // templates: a value not "" and not "0" bypasses
	MaxBody              int64    // larger answers stream through unstored
	// ForwardHeaders are request headers, beyond the standard ones and
	// those the key reads, that reach the upstream on a cached route.
	ForwardHeaders []string
}

// X-Cache values.
var (
	xHit         = []byte("HIT")
	xMiss        = []byte("MISS")
	xStale       = []byte("STALE")
	xBypass      = []byte("BYPASS")
	xRevalidated = []byte("REVALIDATED")
	hXCache      = []byte("X-Cache")
	hAge         = []byte("Age")
)

// lockTimeout is how long a request waits for another one fetching the
// same key (nginx proxy_cache_lock_timeout) before going upstream itself.
const lockTimeout = 5 * time.Second

// cacheTarget wraps an upstream target with the response cache: it
// answers from the store what RFC 9111 lets it, revalidates, and fills
// the store from the upstream answers it may keep. It is the target, so
// the response steps (error pages, headers, compression) see a cached
// answer exactly as they see a relayed one; the store holds the answer as
// the upstream sent it.
type cacheTarget struct {
	s       *Server
	up      *upstream
	inner   target
	store   ResponseStore
	key     *vars.Template
	bypass  []*vars.Template
	maxAge  time.Duration
	swr     time.Duration
	sie     time.Duration
	lock    bool
	maxBody int
	allowed [][]byte // header names forwarded beyond the standard ones
	misses  flights  // fetches of a key for a miss
	revals  flights  // background revalidations
	metrics cacheMetrics
}

func (s *Server) newCacheTarget(o CacheOptions, st *state, up *upstream, inner target, name string) (*cacheTarget, error) {
	if st.opts.ResponseCache == nil {
		return nil, fmt.Errorf("cache: no response store (is [cache] response_share 0?)")
	}
	key := o.Key
	if key == "" {
		key = "$scheme$host$request_uri"
	}
	t := &cacheTarget{s: s, up: up, inner: inner, store: st.opts.ResponseCache, maxAge: o.MaxAge,
		swr: o.StaleWhileRevalidate, sie: o.StaleIfError, lock: o.Lock, maxBody: int(o.MaxBody),
		metrics: st.opts.Metrics.forCache(name)}
	if t.maxBody <= 0 {
		t.maxBody = 1 << 20
	}
	var err error
	if t.key, err = vars.Parse(key); err != nil {
		return nil, fmt.Errorf("cache.key: %w", err)
	}
	for i, b := range o.Bypass {
		tb, err := vars.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("cache.bypass[%d]: %w", i, err)
		}
		t.bypass = append(t.bypass, tb)
	}
	t.allowed = append(t.allowed, t.key.Names(vars.HTTP)...)
	for _, b := range t.bypass {
		t.allowed = append(t.allowed, b.Names(vars.HTTP)...)
	}
	for _, h := range o.ForwardHeaders {
		t.allowed = append(t.allowed, []byte(h))
	}
	t.misses.init()
	t.revals.init()
	st.caches = append(st.caches, t)
	return t, nil
}

func (t *cacheTarget) serve(ctx *fasthttp.RequestCtx, ex *exchange) {
	h := &ctx.Request.Header
	get := h.IsGet()
	if !get && !h.IsHead() {
		t.inner.serve(ctx, ex)
		t.mark(ctx, ex, xBypass)
		// An unsafe method that succeeded invalidates what is stored for
		// its target (RFC 9111 §4.4).
		if st := ctx.Response.StatusCode(); st < 400 && ex.answeredBy == answeredByUpstream && !isSafe(h.Method()) {
			ex.ckey = t.key.Append(ex.ckey[:0], ex)
			t.store.Delete(ex.ckey)
		}
		return
	}
	var rc cacheControl
	requestCacheControl(h, &rc)
	ex.ckey = t.key.Append(ex.ckey[:0], ex)
	if t.bypassed(ex) || len(peekFold(h, hRange)) > 0 {
		t.fetch(ctx, ex, xBypass, get && !rc.noStore, nil)
		return
	}
	now := t.s.now()
	var e entry
	if t.lookup(h, ex, &e) {
		t.fromEntry(ctx, ex, &e, &rc, now)
		return
	}
	if rc.onlyIfCached {
		writeError(ctx, fasthttp.StatusGatewayTimeout)
		t.mark(ctx, ex, xMiss)
		return
	}
	var fl *flight
	if get && t.lock {
		var leader bool
		if fl, leader = t.misses.join(ex.ckey); !leader {
			fl.wait(lockTimeout)
			fl = nil
			if t.lookup(h, ex, &e) {
				t.fromEntry(ctx, ex, &e, &rc, t.s.now())
				return
			}
		}
	}
	t.fetch(ctx, ex, xMiss, get && !rc.noStore, fl)
}

// fromEntry answers with a stored entry when it is fresh enough for the
// request, stale within a window, or after revalidation.
func (t *cacheTarget) fromEntry(ctx *fasthttp.RequestCtx, ex *exchange, e *entry, rc *cacheControl, now time.Time) {
	age := e.age(now)
	fresh := age < e.lifetime
	if rc.maxAge >= 0 && age > time.Duration(rc.maxAge)*time.Second {
		fresh = false
	}
	if rc.minFresh >= 0 && e.lifetime-age < time.Duration(rc.minFresh)*time.Second {
		fresh = false
	}
	if fresh && !rc.noCache {
		t.answer(ctx, ex, e, now, xHit)
		return
	}
	staleFor := age - e.lifetime
	if !rc.noCache && !e.mustRevalidate && staleFor >= 0 {
		if rc.maxStale || (rc.maxStaleSec >= 0 && staleFor <= time.Duration(rc.maxStaleSec)*time.Second) {
			t.answer(ctx, ex, e, now, xStale)
			return
		}
		if staleFor < e.swr && rc.maxAge < 0 {
			t.refreshInBackground(ctx, ex, e)
			t.answer(ctx, ex, e, now, xStale)
			return
		}
	}
	if rc.onlyIfCached {
		writeError(ctx, fasthttp.StatusGatewayTimeout)
		t.mark(ctx, ex, xMiss)
		return
	}
	t.revalidate(ctx, ex, e, now)
}

// fetch forwards the request and keeps the answer when it may.
func (t *cacheTarget) fetch(ctx *fasthttp.RequestCtx, ex *exchange, result []byte, store bool, fl *flight) {
	if store {
		// The stored answer must be a whole one, whatever this client
		// already holds: its validators do not go upstream.
		ex.cacheValidators = true
		ex.valINM, ex.valIMS = ex.valINM[:0], ex.valIMS[:0]
	}
	t.inner.serve(ctx, ex)
	ex.cacheValidators = false
	if store {
		t.keep(ctx, ex, t.s.now(), fl)
	} else {
		fl.finish()
	}
	t.mark(ctx, ex, result)
}

// revalidate asks the upstream whether e is still good (RFC 9111 §4.3).
func (t *cacheTarget) revalidate(ctx *fasthttp.RequestCtx, ex *exchange, e *entry, now time.Time) {
	ex.cacheValidators = true
	ex.valINM = append(ex.valINM[:0], e.field("ETag")...)
	ex.valIMS = append(ex.valIMS[:0], e.field("Last-Modified")...)
	t.inner.serve(ctx, ex)
	ex.cacheValidators = false
	status := ctx.Response.StatusCode()
	done := t.s.now()
	switch {
	case status == fasthttp.StatusNotModified && ex.answeredBy == answeredByUpstream:
		raw := t.refreshed(e, &ctx.Response.Header, done)
		t.store.Set(ex.vkey, raw)
		var fresh entry
		if decodeEntry(raw, &fresh) {
			t.answer(ctx, ex, &fresh, done, xRevalidated)
			return
		}
	case status >= 500 && !e.mustRevalidate && e.age(done)-e.lifetime <= e.sie:
		t.answer(ctx, ex, e, done, xStale)
		return
	}
	t.keep(ctx, ex, done, nil)
	t.mark(ctx, ex, xMiss)
}

// answer writes e as the response, or a 304 when the client's own
// validators match it.
func (t *cacheTarget) answer(ctx *fasthttp.RequestCtx, ex *exchange, e *entry, now time.Time, result []byte) {
	t.discard(ctx, ex)
	resp := &ctx.Response
	skip := resp.SkipBody
	resp.Reset()
	resp.SkipBody = skip
	resp.Header.SetNoDefaultContentType(true)
	notModified := t.notModified(&ctx.Request.Header, e)
	if notModified {
		resp.SetStatusCode(fasthttp.StatusNotModified)
	} else {
		resp.SetStatusCode(e.status)
	}
	le := entryFields(e.fields)
	for le.next() {
		if notModified && (eqFold(le.k, "Content-Type") || eqFold(le.k, "Content-Encoding")) {
			continue
		}
		resp.Header.AddBytesKV(le.k, le.v)
	}
	ex.scratch = strconv.AppendInt(ex.scratch[:0], int64(e.age(now)/time.Second), 10)
	resp.Header.SetBytesKV(hAge, ex.scratch)
	if !notModified {
		resp.SetBody(e.body)
	}
	ex.answeredBy = answeredByUpstream
	ex.upstreamStatus = e.status
	t.mark(ctx, ex, result)
}

// discard drops an upstream answer that a stored one replaces.
func (t *cacheTarget) discard(ctx *fasthttp.RequestCtx, ex *exchange) {
	if !ex.streaming || ctx.Response.BodyStream() != &ex.respBody {
		return
	}
	b := ex.respBody
	ex.respBody = responseBody{} // the response's stream is now a no-op to close
	ex.streaming = false
	b.fill.abort()
	fasthttp.ReleaseResponse(b.resp)
}

func (t *cacheTarget) mark(ctx *fasthttp.RequestCtx, ex *exchange, result []byte) {
	ctx.Response.Header.SetBytesKV(hXCache, result)
	ex.cache = append(ex.cache[:0], result...)
	t.metrics.count(result)
}

func (t *cacheTarget) bypassed(ex *exchange) bool {
	for _, b := range t.bypass {
		ex.scratch = b.Append(ex.scratch[:0], ex)
		if v := ex.scratch; len(v) > 0 && !(len(v) == 1 && v[0] == '0') {
			return true
		}
	}
	return false
}

// notModified evaluates the client's If-None-Match, else
// If-Modified-Since, against e (RFC 9110 §13.2.2).
func (t *cacheTarget) notModified(h *fasthttp.RequestHeader, e *entry) bool {
	if e.status != fasthttp.StatusOK {
		return false
	}
	if inm := peekFold(h, hIfNoneMatch); len(inm) > 0 {
		return etagListMatches(inm, e.field("ETag"))
	}
	ims := peekFold(h, hIfModifiedSince)
	lm := e.field("Last-Modified")
	if len(ims) == 0 || len(lm) == 0 {
		return false
	}
	it, err1 := fasthttp.ParseHTTPDate(ims)
	lt, err2 := fasthttp.ParseHTTPDate(lm)
	return err1 == nil && err2 == nil && !lt.After(it)
}

// etagListMatches is the weak comparison of an If-None-Match list.
func etagListMatches(list, etag []byte) bool {
	if len(etag) == 0 {
		return false
	}
	etag = bytes.TrimPrefix(trimOWS(etag), weakPrefix)
	for len(list) > 0 {
		var e []byte
		e, list, _ = bytes.Cut(list, comma)
		e = trimOWS(e)
		if len(e) == 1 && e[0] == '*' {
			return true
		}
		if bytes.Equal(bytes.TrimPrefix(e, weakPrefix), etag) {
			return true
		}
	}
	return false
}

var (
	hRange           = []byte("Range")
	hIfNoneMatch     = []byte("If-None-Match")
	hIfModifiedSince = []byte("If-Modified-Since")
)

// entryFieldIter walks encoded fields without a closure (the HIT path
// allocates nothing).
type entryFieldIter struct {
	b    []byte
	k, v []byte
}

func entryFields(b []byte) entryFieldIter { return entryFieldIter{b: b} }

func (it *entryFieldIter) next() bool {
	if len(it.b) < 2 {
		return false
	}
	n := int(it.b[0]) | int(it.b[1])<<8
	it.k = it.b[2 : 2+n]
	it.b = it.b[2+n:]
	n = int(it.b[0]) | int(it.b[1])<<8
	it.v = it.b[2 : 2+n]
	it.b = it.b[2+n:]
	return true
}

func isSafe(method []byte) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}
