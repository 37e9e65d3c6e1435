package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// hopByHop are the headers that describe one connection, not the message
// (RFC 9110 §7.6.1), and are never forwarded in either direction.
var hopByHop = [][]byte{
	[]byte("Connection"), []byte("Keep-Alive"), []byte("Proxy-Connection"),
	[]byte("TE"), []byte("Trailer"), []byte("Transfer-Encoding"), []byte("Upgrade"),
	[]byte("Proxy-Authenticate"), []byte("Proxy-Authorization"),
}

var (
	hContentLength    = []byte("Content-Length")
	hHost             = []byte("Host")
	hExpect           = []byte("Expect")
	hXForwardedFor    = []byte("X-Forwarded-For")
	hXForwardedProto  = []byte("X-Forwarded-Proto")
	hXForwardedHost   = []byte("X-Forwarded-Host")
	hXRequestID       = []byte("X-Request-Id")
	hConnection       = []byte("Connection")
	hTransferEncoding = []byte("Transfer-Encoding")
)

func isHopByHop(name []byte) bool {
	for _, h := range hopByHop {
		if bytes.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// headerField points into a header's own storage; valid while it lives.
type headerField struct{ key, value []byte }

// connectionTokens appends the header names a Connection value lists.
func connectionTokens(dst [][]byte, value []byte) [][]byte {
	for len(value) > 0 {
		var tok []byte
		if i := bytes.IndexByte(value, ','); i >= 0 {
			tok, value = value[:i], value[i+1:]
		} else {
			tok, value = value, nil
		}
		tok = bytes.TrimSpace(tok)
		if len(tok) > 0 {
			dst = append(dst, tok)
		}
	}
	return dst
}

func containsFold(list [][]byte, name []byte) bool {
	for _, t := range list {
		if bytes.EqualFold(t, name) {
			return true
		}
	}
	return false
}

// forwardedRequestHeaders is what copyRequestHeaders found on the way.
type forwardedRequestHeaders struct {
	host      []byte // the client's Host, nil when absent
	xff       []byte // incoming X-Forwarded-For values, joined by ", "
	requestID []byte // incoming X-Request-Id, nil when absent
}

// copyRequestHeaders copies in's fields onto out in the order received,
// leaving out hop-by-hop fields, those the Connection field names, and the
// fields the proxy sets itself (Host, Content-Length, Expect and the
// X-Forwarded-* family). fields and tokens are scratch space; the returned
// slices point into in's storage.
func copyRequestHeaders(out, in *fasthttp.RequestHeader, fields []headerField, tokens [][]byte) (forwardedRequestHeaders, []headerField, [][]byte) {
	var f forwardedRequestHeaders
	fields, tokens = fields[:0], tokens[:0]
	for k, v := range in.AllInOrder() {
		fields = append(fields, headerField{k, v})
		if bytes.EqualFold(k, hConnection) {
			tokens = connectionTokens(tokens, v)
		}
	}
	for _, h := range fields {
		k := h.key
		switch {
		case isHopByHop(k) || containsFold(tokens, k):
			continue
		case bytes.EqualFold(k, hHost):
			f.host = h.value
			continue
		case bytes.EqualFold(k, hContentLength), bytes.EqualFold(k, hExpect),
			bytes.EqualFold(k, hXForwardedProto), bytes.EqualFold(k, hXForwardedHost):
			continue
		case bytes.EqualFold(k, hXForwardedFor):
			// Rebuilt by the caller; the first value is kept by reference,
			// repeated fields are joined (rare, so that copy is fine).
			if f.xff == nil {
				f.xff = h.value
			} else {
				f.xff = append(append(append([]byte(nil), f.xff...), ", "...), h.value...)
			}
			continue
		case bytes.EqualFold(k, hXRequestID):
			if len(h.value) > 0 {
				f.requestID = h.value
			}
		}
		out.AddBytesKV(k, h.value)
	}
	return f, fields, tokens
}

// copyResponseHeaders copies an upstream response's fields onto dst,
// leaving out hop-by-hop fields and those its Connection field names.
// Content-Length is set by the body that follows.
func copyResponseHeaders(dst, src *fasthttp.ResponseHeader, tokens [][]byte) [][]byte {
	tokens = tokens[:0]
	for k, v := range src.All() {
		if bytes.EqualFold(k, hConnection) {
			tokens = connectionTokens(tokens, v)
		}
	}
	dst.SetStatusCode(src.StatusCode())
	for k, v := range src.All() {
		if isHopByHop(k) || containsFold(tokens, k) || bytes.EqualFold(k, hContentLength) {
			continue
		}
		dst.AddBytesKV(k, v)
	}
	return tokens
}
