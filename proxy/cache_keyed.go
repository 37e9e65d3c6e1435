package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// forwardedOnCachedRoutes are the request headers a cached route passes
// upstream: the standard ones of RFC 9110/9111 and of edgeproxy's
// forwarding rules (§4). Any other header, X-Forwarded-Host, X-Host,
// X-Original-URL, X-Forwarded-Scheme or X-HTTP-Method-Override among
// them (a client's X-Forwarded-Host never gets here: edgeproxy sets its
// own from Host), is removed from a GET or HEAD before it is forwarded,
// unless the key reads it ($http_NAME), cache.forward_headers names it or
// the route's request_headers set it: an answer
// can depend only on what the key holds or what the upstream names in
// Vary, so no unkeyed header can poison the cache (web cache poisoning
// by construction impossible, not by a list of known-bad names).
var forwardedOnCachedRoutes = [][]byte{
	[]byte("Host"), []byte("User-Agent"), []byte("Accept"), []byte("Accept-Encoding"),
	[]byte("Accept-Language"), []byte("Accept-Charset"), []byte("Cache-Control"), []byte("Pragma"),
	[]byte("Authorization"), []byte("Cookie"), []byte("Referer"), []byte("Origin"),
	[]byte("If-None-Match"), []byte("If-Modified-Since"), []byte("If-Match"), []byte("If-Unmodified-Since"),
	[]byte("If-Range"), []byte("Range"), []byte("Content-Type"), []byte("Content-Length"),
	[]byte("Connection"), []byte("Keep-Alive"), []byte("TE"), []byte("Via"), []byte("DNT"),
	[]byte("X-Request-Id"), []byte("X-Forwarded-For"), []byte("X-Forwarded-Proto"), []byte("X-Forwarded-Host"),
	[]byte("Upgrade"), []byte("Transfer-Encoding"),
}

func (t *cacheTarget) keyed(name []byte) bool {
	for _, n := range forwardedOnCachedRoutes {
		if bytes.EqualFold(n, name) {
			return true
		}
	}
	for _, n := range t.allowed {
		if bytes.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// editUpstreamRequest makes the request a cached route sends upstream:
// on GET and HEAD every header it does not forward is removed (requests
// that carry none, nearly all, are untouched, so their header order stays
// byte for byte), and while the cache revalidates or fills an entry its
// own validators replace the client's.
func (t *cacheTarget) editUpstreamRequest(out, in *fasthttp.RequestHeader, ex *exchange) {
	if !in.IsGet() && !in.IsHead() {
		return
	}
	ex.names = ex.names[:0]
	for k := range out.All() {
		if !t.keyed(k) || (ex.cacheValidators && (bytes.EqualFold(k, hIfNoneMatch) || bytes.EqualFold(k, hIfModifiedSince))) {
			ex.names = append(append(ex.names, k...), '\n')
		}
	}
	for names := ex.names; len(names) > 0; {
		i := bytes.IndexByte(names, '\n')
		out.DelBytes(names[:i])
		names = names[i+1:]
	}
	if ex.cacheValidators {
		if len(ex.valINM) > 0 {
			out.SetBytesKV(hIfNoneMatch, ex.valINM)
		}
		if len(ex.valIMS) > 0 {
			out.SetBytesKV(hIfModifiedSince, ex.valIMS)
		}
	}
}
