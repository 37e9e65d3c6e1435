package proxy

import (
	"bytes"
	"fmt"

	"github.com/valyala/fasthttp"
)

// compressStep compresses answers by Accept-Encoding ([compression], SPEC
// §8): gzip, br or zstd, the highest q first, ties by the algorithms
// order. It is the last response step, so it sees the answer as the
// client would get it. One step serves every route of a state and is safe
// for concurrent use; its encoders are pooled.
//
// It leaves alone what must not change (already encoded, no-transform,
// ranges, 1xx/204/304), what is not of its types, and what is known to be
// shorter than min_bytes. A body in memory is compressed at once (exact
// Content-Length); an upstream's streamed body is compressed on the fly,
// chunked and flushed read by read (SSE). A HEAD gets the head a GET gets.
type compressStep struct {
	order    []coding
	exact    [][]byte // media types that match whole ("application/json")
	prefixes [][]byte // "text/" of "text/*"
	minBytes int
	coders   *coderPools
}

var _ responseStep = (*compressStep)(nil)

func newCompressStep(o CompressionOptions) (*compressStep, error) {
	if !o.Enabled {
		return nil, nil
	}
	lv, err := parseLevel(o.Level)
	if err != nil {
		return nil, err
	}
	c := &compressStep{minBytes: o.MinBytes, coders: newCoderPools(lv)}
	for _, a := range o.Algorithms {
		cd, ok := parseCoding(a)
		if !ok {
			return nil, fmt.Errorf("unknown algorithm %q", a)
		}
		c.order = append(c.order, cd)
	}
	if len(c.order) == 0 {
		return nil, fmt.Errorf("no algorithms")
	}
	for _, t := range o.Types {
		if pre, ok := bytes.CutSuffix([]byte(t), []byte("*")); ok {
			c.prefixes = append(c.prefixes, pre)
		} else {
			c.exact = append(c.exact, []byte(t))
		}
	}
	return c, nil
}

func (c *compressStep) onResponse(ctx *fasthttp.RequestCtx, ex *exchange) {
	resp := &ctx.Response
	if !c.compressible(resp) {
		return
	}
	cd := c.negotiate(&ctx.Request.Header)
	if cd == codingIdentity {
		return
	}
	switch {
	case resp.IsBodyStream():
		// Only the upstream body relay set is taken over: another stream
		// (a handler's own) cannot be detached without being closed.
		if !ex.streaming || resp.BodyStream() != &ex.respBody {
			return
		}
		cl := int64(resp.Header.ContentLength())
		if cl == 0 || (cl > 0 && cl < int64(c.minBytes)) {
			return
		}
		src := ex.respBody
		ex.respBody = responseBody{} // closed by SetBodyStream below as a no-op: z owns src now
		z := c.coders.get(cd)
		z.startStream(src, max(cl, -1))
		resp.SetBodyStream(z, -1)
	case len(resp.Body()) == 0:
		// The head of an upstream's answer to HEAD, whose GET would
		// stream the upstream's body compressed. Other empty answers
		// have nothing to compress.
		if !ctx.Request.Header.IsHead() || ex.answeredBy != answeredByUpstream {
			return
		}
		if cl, known := headContentLength(&resp.Header); known && (cl == 0 || cl < c.minBytes) {
			return
		}
		resp.Header.SetContentLength(-1) // as the GET: chunked, length unknown
	default:
		body := resp.Body()
		if len(body) < c.minBytes {
			return
		}
		z := c.coders.get(cd)
		out, err := z.compressBytes(body)
		if err != nil {
			z.release()
			return // the answer goes out as it is
		}
		resp.SetBody(out) // copied: z goes back to its pool now
		z.release()
	}
	ex.scratch = markEncoded(&resp.Header, cd, ex.scratch[:0])
}

// compressible reports whether the answer may be compressed at all,
// whatever the client accepts.
func (c *compressStep) compressible(resp *fasthttp.Response) bool {
	switch status := resp.StatusCode(); {
	case status < 200, status == fasthttp.StatusNoContent, status == fasthttp.StatusNotModified,
		status == fasthttp.StatusPartialContent, status == statusCloseWithoutAnswer:
		return false
	}
	if ce := resp.Header.ContentEncoding(); len(ce) > 0 && !bytes.EqualFold(trimOWS(ce), codingTokens[codingIdentity]) {
		return false
	}
	if !c.typeMatches(resp.Header.ContentType()) {
		return false
	}
	for k, v := range resp.Header.All() {
		switch {
		case bytes.EqualFold(k, hContentRange):
			return false
		case bytes.EqualFold(k, hCacheControl) && fieldHasToken(v, noTransform):
			return false
		}
	}
	return true
}

// typeMatches compares the media type of a Content-Type, without its
// parameters, to the [compression] types. No Content-Type: no match.
func (c *compressStep) typeMatches(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = trimOWS(ct)
	if len(ct) == 0 {
		return false
	}
	for _, t := range c.exact {
		if bytes.EqualFold(ct, t) {
			return true
		}
	}
	for _, p := range c.prefixes {
		if len(ct) > len(p) && bytes.EqualFold(ct[:len(p)], p) {
			return true
		}
	}
	return false
}

// negotiate reads every Accept-Encoding field of the request (names
// compare case-insensitively: the server keeps them as sent). A request
// with Cache-Control: no-transform asks intermediaries not to transform
// the content (RFC 9111 §5.2.1.6), so it gets identity.
func (c *compressStep) negotiate(h *fasthttp.RequestHeader) coding {
	var a acceptEncoding
	a.reset()
	for k, v := range h.All() {
		switch {
		case bytes.EqualFold(k, hAcceptEncoding):
			a.parse(v)
		case bytes.EqualFold(k, hCacheControl) && fieldHasToken(v, noTransform):
			return codingIdentity
		}
	}
	if !a.seen {
		return codingIdentity
	}
	return a.choose(c.order)
}

// headContentLength is the Content-Length the head carries, if any.
func headContentLength(h *fasthttp.ResponseHeader) (int, bool) {
	if len(h.Peek(fasthttp.HeaderContentLength)) == 0 {
		return 0, false
	}
	return h.ContentLength(), true
}

var (
	hAcceptEncoding = []byte("Accept-Encoding")
	hCacheControl   = []byte("Cache-Control")
	hContentRange   = []byte("Content-Range")
	hETag           = []byte("ETag")
	hVary           = []byte("Vary")
	noTransform     = []byte("no-transform")
	weakPrefix      = []byte("W/")
	varyStar        = []byte("*")
)

// markEncoded writes what a compressed answer's head must say: its
// Content-Encoding, Vary naming Accept-Encoding (merged into the Vary
// there is) and a weak ETag (the bytes differ from the identity answer's).
// Field names compare case-insensitively; every field keeps its name's
// case and its place (fasthttp's deletion moves the last field into a
// deleted one's place, so nothing is deleted). Accept-Ranges stays: a
// range request is answered by the upstream and never compressed.
// scratch is returned for reuse.
func markEncoded(h *fasthttp.ResponseHeader, cd coding, scratch []byte) []byte {
	h.SetContentEncodingBytes(codingTokens[cd])

	var varyKey, varyValue, etagKey, etagValue []byte
	varies, varyDone := 0, false
	for k, v := range h.All() {
		switch {
		case bytes.EqualFold(k, hVary):
			varies++
			varyKey, varyValue = k, v
			if fieldHasToken(v, hAcceptEncoding) || fieldHasToken(v, varyStar) {
				varyDone = true
			}
		case etagKey == nil && bytes.EqualFold(k, hETag):
			etagKey, etagValue = k, v
		}
	}
	// Each edit copies the key before it changes the header, and changes
	// only its own field's value: the slices saved above stay valid.
	switch {
	case varyDone:
	case varies == 1 && len(trimOWS(varyValue)) > 0:
		scratch = append(append(append(scratch[:0], trimOWS(varyValue)...), commaSpace...), hAcceptEncoding...)
		h.SetBytesKV(varyKey, scratch)
	default: // none, or several fields: one more field is the same list (RFC 9110 §5.3)
		h.AddBytesKV(hVary, hAcceptEncoding)
	}
	if etagKey != nil && len(etagValue) > 0 && etagValue[0] == '"' {
		scratch = append(append(scratch[:0], weakPrefix...), etagValue...)
		h.SetBytesKV(etagKey, scratch)
	}
	return scratch
}

// fieldHasToken reports whether a comma-separated field value lists tok
// (case-insensitively), ignoring parameters after '='.
func fieldHasToken(v, tok []byte) bool {
	for len(v) > 0 {
		var e []byte
		e, v, _ = bytes.Cut(v, comma)
		if i := bytes.IndexByte(e, '='); i >= 0 {
			e = e[:i]
		}
		if bytes.EqualFold(trimOWS(e), tok) {
			return true
		}
	}
	return false
}
