package proxy

import (
	"time"

	"github.com/valyala/fasthttp"
)

// refreshInBackground revalidates e with the upstream after the client
// got the stale answer (stale-while-revalidate): one request per key at
// a time, built now from this request (the exchange is reused once the
// handler returns) and sent by a goroutine of its own.
func (t *cacheTarget) refreshInBackground(ctx *fasthttp.RequestCtx, ex *exchange, e *entry) {
	fl, leader := t.revals.join(ex.vkey)
	if !leader {
		return
	}
	out := fasthttp.AcquireRequest()
	ex.cacheValidators = true
	ex.valINM = append(ex.valINM[:0], e.field("ETag")...)
	ex.valIMS = append(ex.valIMS[:0], e.field("Last-Modified")...)
	hostPerAttempt := t.s.buildUpstreamRequest(out, ctx, ex, t.up)
	ex.cacheValidators = false
	out.Header.SetMethod(fasthttp.MethodGet) // a HEAD's stale answer is refreshed by the GET it came from
	timeout := t.up.opts.ResponseTimeout
	if ex.rt != nil && ex.rt.timeout > 0 {
		timeout = time.Duration(ex.rt.timeout)
	}
	hash := t.up.keyOf(ex)
	var qh fasthttp.RequestHeader
	ctx.Request.Header.CopyTo(&qh)
	old := *e // e.raw is the caller's own copy from the store
	key := append([]byte(nil), ex.vkey...)
	go func() {
		defer fl.finish()
		defer fasthttp.ReleaseRequest(out)
		t.revalidateDetached(out, hostPerAttempt, hash, timeout, &old, key, &qh)
	}()
}

func (t *cacheTarget) revalidateDetached(out *fasthttp.Request, hostPerAttempt bool, hash uint64, timeout time.Duration, e *entry, key []byte, qh *fasthttp.RequestHeader) {
	set := t.up.set.Load()
	now := t.s.now()
	i := t.up.pick(set, now, 0, hash)
	if i < 0 {
		return
	}
	srv := set.servers[i]
	if hostPerAttempt {
		out.Header.SetHost(srv.hostHeader)
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := srv.do(out, resp, now.Add(timeout), 0); err != nil {
		return
	}
	done := t.s.now()
	status := resp.StatusCode()
	if status == fasthttp.StatusNotModified {
		t.store.Set(key, t.refreshed(e, &resp.Header, done))
		return
	}
	if status >= 500 {
		return // the stale entry stays for stale-if-error
	}
	var scratch exchange
	meta, ok := t.storable(status, &resp.Header, qh, &scratch, done)
	if !ok || string(resp.Header.Peek("Vary")) != string(e.field("Vary")) {
		t.store.Delete(key)
		return
	}
	body := resp.Body()
	if resp.IsBodyStream() {
		var whole bool
		var err error
		body, whole, err = readUpTo(nil, resp.BodyStream(), int64(t.maxBody)+1)
		if err != nil || !whole || len(body) > t.maxBody {
			t.store.Delete(key)
			return
		}
	}
	buf := encodeHead(make([]byte, 0, len(body)+256), meta, responseFields(&resp.Header))
	t.store.Set(key, appendBody(buf, body))
}
