package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

var (
	hContentLength    = []byte("Content-Length")
	hXForwardedFor    = []byte("X-Forwarded-For")
	hXForwardedProto  = []byte("X-Forwarded-Proto")
	hXForwardedHost   = []byte("X-Forwarded-Host")
	hXRequestID       = []byte("X-Request-Id")
	hTransferEncoding = []byte("Transfer-Encoding")
)

// isHopByHop: the fields that describe one connection, not the message
// (RFC 9110 §7.6.1), never forwarded in either direction.
func isHopByHop(name []byte) bool { return kindOf(name) <= kindHopByHop }

// headerKind is what the proxy does with a field of that name.
type headerKind uint8

const (
	kindConnection headerKind = iota // hop-by-hop, and names more of them
	kindHopByHop
	kindOther
	kindHost
	kindContentLength
	kindExpect
	kindXForwardedFor
	kindXForwardedProto
	kindXForwardedHost
	kindXRequestID
)

// kindOf classifies a field name with one case-insensitive comparison,
// chosen by length: trying each name in turn was 1% of pass-through CPU.
func kindOf(k []byte) headerKind {
	is := func(name string) bool { return bytes.EqualFold(k, []byte(name)) }
	switch len(k) {
	case 2:
		if is("TE") {
			return kindHopByHop
		}
	case 4:
		if is("Host") {
			return kindHost
		}
	case 6:
		if is("Expect") {
			return kindExpect
		}
	case 7:
		if is("Trailer") || is("Upgrade") {
			return kindHopByHop
		}
	case 10:
		if is("Connection") {
			return kindConnection
		}
		if is("Keep-Alive") {
			return kindHopByHop
		}
	case 12:
		if is("X-Request-Id") {
			return kindXRequestID
		}
	case 14:
		if is("Content-Length") {
			return kindContentLength
		}
	case 15:
		if is("X-Forwarded-For") {
			return kindXForwardedFor
		}
	case 16:
		if is("Proxy-Connection") {
			return kindHopByHop
		}
		if is("X-Forwarded-Host") {
			return kindXForwardedHost
		}
	case 17:
		if is("Transfer-Encoding") {
			return kindHopByHop
		}
		if is("X-Forwarded-Proto") {
			return kindXForwardedProto
		}
	case 18:
		if is("Proxy-Authenticate") {
			return kindHopByHop
		}
	case 19:
		if is("Proxy-Authorization") {
			return kindHopByHop
		}
	}
	return kindOther
}

// headerField points into a header's own storage; valid while it lives.
type headerField struct{ key, value []byte }

// connectionTokens appends the header names a Connection value lists.
func connectionTokens(dst [][]byte, value []byte) [][]byte {
	for len(value) > 0 {
		var tok []byte
		tok, value, _ = bytes.Cut(value, comma)
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
	host      []byte // the client's Host
	hasHost   bool   // the client sent one
	hostKey   []byte // the name of the Host field written, nil when none
	xff       []byte // incoming X-Forwarded-For values, joined by ", "
	requestID []byte // incoming X-Request-Id, nil when absent
}

// hostRule is what becomes of the client's Host field upstream. The field
// keeps its place and the case of its name in every rule but hostDrop.
type hostRule uint8

const (
	hostClient hostRule = iota // its value as sent
	hostValue                  // the value given (a fixed name, or one set per attempt)
	hostDrop                   // left out: request_headers decides Host
)

// copyRequestHeaders copies in's fields onto out in the order received,
// names in their case and repeated fields apart (out is in raw-header mode,
// see buildUpstreamRequest), leaving out hop-by-hop fields, those the
// Connection field names, the fields the proxy sets itself (Expect and the
// X-Forwarded-* family) and those edit replaces. Host is written by rule;
// Content-Length stays in place, its value set to the length of the body
// sent when the request is written. fields and tokens are scratch space;
// the returned slices point into in's storage.
func copyRequestHeaders(out, in *fasthttp.RequestHeader, edit *headerEdit, rule hostRule, host []byte, fields []headerField, tokens [][]byte) (forwardedRequestHeaders, []headerField, [][]byte) {
	var f forwardedRequestHeaders
	fields, tokens = fields[:0], tokens[:0]
	for k, v := range in.AllInOrder() {
		fields = append(fields, headerField{k, v})
		if kindOf(k) == kindConnection {
			tokens = connectionTokens(tokens, v)
		}
	}
	for _, h := range fields {
		k := h.key
		kind := kindOf(k)
		switch {
		case kind <= kindHopByHop || (len(tokens) > 0 && containsFold(tokens, k)):
			continue
		case kind == kindOther && edit.drops(k):
			continue // request_headers sets or removes it
		case kind == kindHost:
			if f.hasHost {
				continue // a repeated Host: the first decides
			}
			f.host, f.hasHost = h.value, true
			if rule == hostDrop {
				continue
			}
			f.hostKey = k
			if rule == hostValue {
				out.AddBytesKV(k, host)
				continue
			}
		case kind == kindExpect, kind == kindXForwardedProto, kind == kindXForwardedHost:
			continue
		case kind == kindXForwardedFor:
			// Rebuilt by the caller; the first value is kept by reference,
			// repeated fields are joined (rare, so that copy is fine).
			if f.xff == nil {
				f.xff = h.value
			} else {
				f.xff = append(append(append([]byte(nil), f.xff...), ", "...), h.value...)
			}
			continue
		case kind == kindXRequestID:
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
		if kindOf(k) == kindConnection {
			tokens = connectionTokens(tokens, v)
		}
	}
	dst.SetStatusCode(src.StatusCode())
	for k, v := range src.All() {
		if kind := kindOf(k); kind <= kindHopByHop || kind == kindContentLength || (len(tokens) > 0 && containsFold(tokens, k)) {
			continue
		}
		dst.AddBytesKV(k, v)
	}
	return tokens
}
