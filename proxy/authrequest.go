package proxy

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/edgeproxy/edgeproxy/internal/vars"
)

// AuthRequestOptions are a route's auth_request (SPEC §10, nginx
// auth_request): every request is first sent, without its body, to Path
// on Upstream.
type AuthRequestOptions struct {
	Upstream string
	Path     string
	// CopyHeaders are copied from a 2xx auth answer into the request sent
	// on (nginx auth_request_set + proxy_set_header); a name the answer
	// lacks is removed from the request, so a client cannot supply it.
	CopyHeaders []string
	// Timeout bounds the sub-request (default 1s); past it the client
	// gets 500.
	Timeout time.Duration
	// Cache, when CacheKey is set, keeps 2xx/401/403 answers for CacheTTL
	// per value of CacheKey (a template, e.g. "$http_authorization"), at
	// most CacheMaxEntries of them. An empty key value is never cached.
	CacheKey        string
	CacheTTL        time.Duration
	CacheMaxEntries int
}

var (
	hXOriginalURI    = []byte("X-Original-URI")
	hXOriginalMethod = []byte("X-Original-Method")
)

// authRequestStep asks the auth upstream about each request: 2xx lets it
// through, 401 and 403 go back to the client with the answer's
// WWW-Authenticate, anything else (a timeout, a refused connection) is
// 500.
type authRequestStep struct {
	s        *Server
	up       *upstream
	path     []byte
	copy     [][]byte
	timeout  time.Duration
	cacheKey *vars.Template // nil: no cache
	cache    *authCache

	outcome [authOutcomes]prometheus.Counter
	counts  [authOutcomes]atomic.Uint64
}

type authOutcome int

const (
	authAllow authOutcome = iota
	authDeny
	authError
	authCachedAllow
	authCachedDeny
	authOutcomes
)

var authOutcomeNames = [authOutcomes]string{"allow", "deny", "error", "cached_allow", "cached_deny"}

func (s *Server) newAuthRequestStep(route string, o AuthRequestOptions, st *state) (*authRequestStep, error) {
	up, ok := st.upstreams[o.Upstream]
	if !ok {
		return nil, fmt.Errorf("unknown upstream %q", o.Upstream)
	}
	a := &authRequestStep{s: s, up: up, path: []byte(o.Path), timeout: o.Timeout}
	if a.timeout <= 0 {
		a.timeout = time.Second
	}
	if len(a.path) == 0 {
		a.path = []byte("/")
	}
	for _, h := range o.CopyHeaders {
		a.copy = append(a.copy, []byte(h))
	}
	if o.CacheKey != "" && o.CacheTTL > 0 {
		var err error
		if a.cacheKey, err = vars.Parse(o.CacheKey); err != nil {
			return nil, fmt.Errorf("cache key: %w", err)
		}
		a.cache = newAuthCache(o.CacheMaxEntries, o.CacheTTL)
	}
	for i := range a.outcome {
		a.outcome[i] = st.opts.Metrics.counter(func(m *Metrics) *prometheus.CounterVec { return m.authOutcomes }, route, authOutcomeNames[i])
	}
	return a, nil
}

func (a *authRequestStep) count(o authOutcome) {
	a.counts[o].Add(1)
	a.outcome[o].Inc()
}

func (a *authRequestStep) onRequest(ctx *fasthttp.RequestCtx, ex *exchange) bool {
	var key []byte
	if a.cache != nil {
		ex.scratch = a.cacheKey.Append(ex.scratch[:0], ex)
		key = ex.scratch
		if v, ok := a.cache.get(key, a.s.now()); ok {
			if v.status/100 == 2 {
				a.count(authCachedAllow)
			} else {
				a.count(authCachedDeny)
			}
			return a.apply(ctx, ex, v)
		}
	}
	v := a.ask(ctx, ex)
	switch {
	case v.status/100 == 2:
		a.count(authAllow)
	case v.status == fasthttp.StatusUnauthorized, v.status == fasthttp.StatusForbidden:
		a.count(authDeny)
	default:
		a.count(authError)
	}
	if a.cache != nil && len(key) > 0 && v.status != fasthttp.StatusInternalServerError {
		ex.scratch = a.cacheKey.Append(ex.scratch[:0], ex) // ask used scratch
		a.cache.put(ex.scratch, v, a.s.now())
	}
	return a.apply(ctx, ex, v)
}

// apply carries out a verdict: copies headers into the request and lets
// it through, or answers it.
func (a *authRequestStep) apply(ctx *fasthttp.RequestCtx, ex *exchange, v *authVerdict) bool {
	if v.status/100 == 2 {
		// forward sets them on the request it sends (the client's
		// request is relayed from its raw bytes).
		ex.authCopy, ex.authValues = a.copy, v.values
		return false
	}
	if v.status == fasthttp.StatusUnauthorized || v.status == fasthttp.StatusForbidden {
		ex.cause = "denied by auth_request"
		writeError(ctx, v.status)
		if len(v.wwwAuth) > 0 {
			ctx.Response.Header.SetBytesKV(hWWWAuthenticate, v.wwwAuth)
		}
		return true
	}
	if ex.cause == "" {
		ex.cause = fmt.Sprintf("auth_request answered %d", v.status)
	}
	writeError(ctx, fasthttp.StatusInternalServerError)
	return true
}

// ask sends the sub-request: the original method and headers, no body,
// to the auth path, with the original target in X-Original-URI and the
// method in X-Original-Method. A failure is a verdict of 500.
func (a *authRequestStep) ask(ctx *fasthttp.RequestCtx, ex *exchange) *authVerdict {
	in := &ctx.Request
	out := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(out)
	out.Header.DisableNormalizing()
	out.Header.SetMethodBytes(in.Header.Method())
	out.SetRequestURIBytes(a.path)
	var fwd forwardedRequestHeaders
	fwd, ex.hfields, ex.tokens = copyRequestHeaders(&out.Header, &in.Header, nil, hostDrop, nil, ex.hfields, ex.tokens) // Host is set below
	a.s.setForwardedHeaders(out, ex, fwd, ctx.IsTLS())
	out.Header.SetBytesKV(hXOriginalURI, in.Header.RequestURI())
	out.Header.SetBytesKV(hXOriginalMethod, in.Header.Method())
	up := a.up
	set := up.set.Load()
	now := a.s.now()
	i := up.pick(set, now, 0, up.keyOf(ex))
	if i < 0 {
		ex.cause = "auth_request: no available server in upstream " + up.name
		return &authVerdict{status: fasthttp.StatusInternalServerError}
	}
	srv := set.servers[i]
	switch {
	case up.opts.Host == HostPreserve && len(fwd.host) > 0:
		out.Header.SetHostBytes(fwd.host)
	case up.opts.Host == HostPreserve, up.opts.Host == HostUpstream:
		out.Header.SetHost(srv.hostHeader)
	default:
		out.Header.SetHost(up.opts.Host)
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := srv.do(out, resp, now.Add(a.timeout), 0); err != nil {
		ex.cause = "auth_request: " + err.Error()
		return &authVerdict{status: fasthttp.StatusInternalServerError}
	}
	v := &authVerdict{status: resp.StatusCode()}
	switch {
	case v.status/100 == 2:
		v.values = make([][]byte, len(a.copy))
		for i, name := range a.copy {
			if val := peekFoldResponse(&resp.Header, name); val != nil {
				v.values[i] = append([]byte{}, val...)
			}
		}
	case v.status == fasthttp.StatusUnauthorized, v.status == fasthttp.StatusForbidden:
		if w := peekFoldResponse(&resp.Header, hWWWAuthenticate); w != nil {
			v.wwwAuth = append([]byte(nil), w...)
		}
	}
	return v
}

// authVerdict is one auth answer, what a cache entry keeps; never
// changed once made.
type authVerdict struct {
	status  int
	values  [][]byte // per copy header; nil: absent
	wwwAuth []byte
}

func peekFoldResponse(h *fasthttp.ResponseHeader, name []byte) []byte {
	for k, v := range h.All() {
		if bytes.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// applyAuthHeaders puts the copy_headers of an auth answer on the request
// sent upstream, in place of any the client sent.
func applyAuthHeaders(out *fasthttp.RequestHeader, ex *exchange) {
	for i, name := range ex.authCopy {
		ex.names = delFoldRequest(out, name, ex.names)
		if v := ex.authValues[i]; v != nil {
			out.SetBytesKV(name, v)
		}
	}
}

// delFoldRequest deletes every request field named name in any case.
func delFoldRequest(h *fasthttp.RequestHeader, name []byte, scratch []byte) []byte {
	scratch = scratch[:0]
	var ends [8]int
	n := 0
	for k := range h.All() {
		if bytes.EqualFold(k, name) && n < len(ends) {
			scratch = append(scratch, k...)
			ends[n] = len(scratch)
			n++
		}
	}
	start := 0
	for i := 0; i < n; i++ {
		h.DelBytes(scratch[start:ends[i]])
		start = ends[i]
	}
	return scratch
}
