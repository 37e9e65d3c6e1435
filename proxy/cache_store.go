package proxy

import (
	"bytes"
	"encoding/binary"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// lookup finds the entry for the request: the key's own 'R' record, or
// through its 'V' record the variant the request's Vary-named headers
// select. ex.vkey is left as the key the answer is (or would be) under.
func (t *cacheTarget) lookup(h *fasthttp.RequestHeader, ex *exchange, e *entry) bool {
	ex.vkey = append(ex.vkey[:0], ex.ckey...)
	raw, ok := t.store.Get(ex.ckey)
	if !ok || len(raw) == 0 {
		return false
	}
	if raw[0] == entryVary {
		ex.vkey = appendVariantKey(ex.vkey[:0], ex.ckey, raw, h)
		if raw, ok = t.store.Get(ex.vkey); !ok {
			return false
		}
	}
	return decodeEntry(raw, e)
}

// appendVariantKey is key 0x00 nonce, then 0x00 and the normalised value
// of every header the 'V' record v names.
func appendVariantKey(dst, key, v []byte, h *fasthttp.RequestHeader) []byte {
	dst = append(append(dst, key...), 0)
	dst = append(dst, v[1:9]...)
	names := v[9:]
	for len(names) > 0 {
		var name []byte
		name, names, _ = bytes.Cut(names, lineFeed)
		dst = append(dst, 0)
		if eqFold(name, "accept-encoding") {
			dst = appendAcceptedCodings(dst, h)
			continue
		}
		first := true
		for k, val := range h.All() {
			if bytes.EqualFold(k, name) {
				if !first {
					dst = append(dst, ',')
				}
				dst = append(dst, trimOWS(val)...)
				first = false
			}
		}
	}
	return dst
}

// appendAcceptedCodings normalises Accept-Encoding to the known codings
// the client takes (q > 0), so "gzip, br" and "br,gzip;q=1" share a
// variant and an attacker's spellings cannot multiply entries.
func appendAcceptedCodings(dst []byte, h *fasthttp.RequestHeader) []byte {
	var a acceptEncoding
	a.reset()
	for k, v := range h.All() {
		if bytes.EqualFold(k, hAcceptEncoding) {
			a.parse(v)
		}
	}
	for cd := codingGzip; cd < numCodings; cd++ {
		q := a.q[cd]
		if q == qNotNamed {
			q = a.star
		}
		if a.seen && q > 0 {
			dst = append(dst, codingTokens[cd]...)
			dst = append(dst, ' ')
		}
	}
	return dst
}

// keep stores the upstream's answer now in ctx.Response when RFC 9111
// lets a shared cache keep it; a streamed body is copied as it goes to
// the client (cacheFill). fl, the key's miss lock, is released when the
// answer is stored or known not to be.
func (t *cacheTarget) keep(ctx *fasthttp.RequestCtx, ex *exchange, now time.Time, fl *flight) {
	resp := &ctx.Response
	if !ctx.Request.Header.IsGet() || requestSaysNoStore(&ctx.Request.Header) {
		fl.finish() // a HEAD's answer has no body to keep
		return
	}
	meta, ok := t.storable(resp.StatusCode(), &resp.Header, &ctx.Request.Header, ex, now)
	if !ok || ex.answeredBy != answeredByUpstream || ex.intercepted {
		fl.finish()
		return
	}
	key, ok := t.variantKey(&resp.Header, &ctx.Request.Header, ex)
	if !ok {
		fl.finish()
		return
	}
	cl := resp.Header.ContentLength()
	if cl > t.maxBody {
		fl.finish()
		return
	}
	buf := make([]byte, 0, 256+max(cl, 0))
	buf = encodeHead(buf, meta, responseFields(&resp.Header))
	if ex.streaming && resp.BodyStream() == &ex.respBody {
		buf = append(buf, 0, 0, 0, 0)
		ex.respBody.fill = &cacheFill{t: t, key: string(key), buf: buf, bodyAt: len(buf), want: int64(cl), fl: fl}
		return
	}
	t.store.Set(key, appendBody(buf, resp.Body()))
	fl.finish()
}

// storable decides whether an answer may be kept and how fresh it is.
func (t *cacheTarget) storable(status int, rh *fasthttp.ResponseHeader, qh *fasthttp.RequestHeader, ex *exchange, now time.Time) (entryMeta, bool) {
	var f responseFacts
	ex.scratch = readResponseFacts(rh, &f, ex.scratch)
	switch {
	case !storableStatus(status, f.explicit()), f.cc.noStore, f.cc.private, f.setCookie, f.contentRng,
		fieldHasToken(f.vary, varyStar):
		return entryMeta{}, false
	case len(peekFold(qh, hAuthorization)) > 0 && !(f.cc.public || f.cc.sMaxAge >= 0 || f.cc.mustRevalidate):
		return entryMeta{}, false
	}
	life := f.lifetime(now, t.maxAge)
	if life <= 0 && !(f.explicit() && f.hasValidtor) {
		return entryMeta{}, false
	}
	m := entryMeta{storedAt: now, lifetime: life, swr: t.swr, sie: t.sie, status: status,
		mustRevalidate: f.cc.mustRevalidate || f.cc.noCache}
	m.initialAge = time.Duration(f.age) * time.Second
	if !f.date.IsZero() {
		m.initialAge = max(m.initialAge, now.Sub(f.date).Truncate(time.Second))
	}
	if f.cc.swr >= 0 {
		m.swr = max(m.swr, time.Duration(f.cc.swr)*time.Second)
	}
	if f.cc.sie >= 0 {
		m.sie = max(m.sie, time.Duration(f.cc.sie)*time.Second)
	}
	return m, true
}

// variantKey is the key an answer is stored under: the route's key, or
// for an answer with Vary a variant of it, writing the key's 'V' record
// when it names other headers than before.
func (t *cacheTarget) variantKey(rh *fasthttp.ResponseHeader, qh *fasthttp.RequestHeader, ex *exchange) ([]byte, bool) {
	var names []string
	for k, v := range rh.All() {
		if !eqFold(k, "Vary") {
			continue
		}
		for _, n := range bytes.Split(v, []byte(",")) {
			if n = trimOWS(n); len(n) > 0 {
				names = append(names, string(bytes.ToLower(n)))
			}
		}
	}
	if len(names) == 0 {
		return ex.ckey, true
	}
	sort.Strings(names)
	var want []byte
	for i, n := range names {
		if i > 0 && n == names[i-1] {
			continue
		}
		if len(want) > 0 {
			want = append(want, '\n')
		}
		want = append(want, n...)
	}
	v, ok := t.store.Get(ex.ckey)
	if !ok || len(v) < 9 || v[0] != entryVary || !bytes.Equal(v[9:], want) {
		v = append([]byte{entryVary}, binary.LittleEndian.AppendUint64(nil, uint64(t.s.now().UnixNano()))...)
		v = append(v, want...)
		t.store.Set(ex.ckey, v)
	}
	return appendVariantKey(nil, ex.ckey, v, qh), true
}

// refreshed is e updated by a 304's head (RFC 9111 §4.3.4): its
// freshness and the fields it sends replace the stored ones.
func (t *cacheTarget) refreshed(e *entry, h *fasthttp.ResponseHeader, now time.Time) []byte {
	var f responseFacts
	readResponseFacts(h, &f, nil)
	m := entryMeta{storedAt: now, lifetime: e.lifetime, swr: e.swr, sie: e.sie, status: e.status, mustRevalidate: e.mustRevalidate}
	if f.explicit() {
		m.lifetime = f.lifetime(now, t.maxAge)
		m.mustRevalidate = f.cc.mustRevalidate || f.cc.noCache
	}
	m.initialAge = time.Duration(f.age) * time.Second
	replaced := func(k []byte) bool {
		return !eqFold(k, "Content-Length") && !eqFold(k, "Content-Type") && !eqFold(k, "Content-Encoding") &&
			len(h.PeekBytes(k)) > 0
	}
	buf := encodeHead(make([]byte, 0, len(e.raw)+256), m, func(add func(k, v []byte)) {
		it := entryFields(e.fields)
		for it.next() {
			if !replaced(it.k) {
				add(it.k, it.v)
			}
		}
		for k, v := range h.All() {
			if replaced(k) {
				add(k, v)
			}
		}
	})
	return appendBody(buf, e.body)
}

// cacheFill copies a streamed upstream body into a new entry while the
// client gets it; it is stored when the body is whole and within
// max_body, and dropped otherwise (the client's answer goes on).
type cacheFill struct {
	t      *cacheTarget
	key    string
	buf    []byte
	bodyAt int
	want   int64 // Content-Length, -1 unknown
	fl     *flight
	done   bool
}

func (f *cacheFill) write(p []byte) {
	if f == nil || f.done {
		return
	}
	if len(f.buf)-f.bodyAt+len(p) > f.t.maxBody {
		f.abort()
		return
	}
	f.buf = append(f.buf, p...)
	if f.want >= 0 && int64(len(f.buf)-f.bodyAt) == f.want {
		f.end()
	}
}

// end stores the entry: the body is whole.
func (f *cacheFill) end() {
	if f == nil || f.done {
		return
	}
	if f.want >= 0 && int64(len(f.buf)-f.bodyAt) != f.want {
		f.abort()
		return
	}
	binary.LittleEndian.PutUint32(f.buf[f.bodyAt-4:], uint32(len(f.buf)-f.bodyAt))
	f.t.store.Set([]byte(f.key), f.buf)
	f.done, f.buf = true, nil
	f.fl.finish()
}

func (f *cacheFill) abort() {
	if f == nil || f.done {
		return
	}
	f.done, f.buf = true, nil
	f.fl.finish()
}

// flights are the fetches in progress, by key: concurrent misses of one
// key wait for the first (lock = true, nginx proxy_cache_lock).
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	fs      *flights
	key     string
	done    chan struct{}
	once    sync.Once
	waiters atomic.Int32 // requests that joined it instead of fetching
}

func (fs *flights) init() { fs.m = map[string]*flight{} }

func (fs *flights) join(key []byte) (*flight, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fl, ok := fs.m[string(key)]; ok {
		fl.waiters.Add(1)
		return fl, false
	}
	fl := &flight{fs: fs, key: string(key), done: make(chan struct{})}
	fs.m[fl.key] = fl
	return fl, true
}

func (fl *flight) wait(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-fl.done:
	case <-t.C:
	}
}

// finish ends the flight; nil and repeated calls are no-ops.
func (fl *flight) finish() {
	if fl == nil {
		return
	}
	fl.once.Do(func() {
		fl.fs.mu.Lock()
		delete(fl.fs.m, fl.key)
		fl.fs.mu.Unlock()
		close(fl.done)
	})
}

func requestSaysNoStore(h *fasthttp.RequestHeader) bool {
	var rc cacheControl
	requestCacheControl(h, &rc)
	return rc.noStore
}
