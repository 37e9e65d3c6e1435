package proxy

import (
	"io"
	"time"

	"github.com/valyala/fasthttp"
)

var (
	protoHTTP  = []byte("http")
	protoHTTPS = []byte("https")
	commaSpace = []byte(", ")
)

// forward is the upstream target: it builds the upstream request, sends
// it by the retry rules of SPEC §4 and relays the response. ex.rt may be
// nil (a handler forwarding to its fallback upstream): nothing is stripped
// or edited then.
func (s *Server) forward(ctx *fasthttp.RequestCtx, ex *exchange, up *upstream) {
	ex.answeredBy = answeredByOwnError
	rt := ex.rt
	limit := ex.st.maxBodyBytes
	if rt != nil {
		limit = rt.maxBodyBytes
	}
	cl := ctx.Request.Header.ContentLength()
	if limit != Unlimited && int64(cl) > limit {
		ex.cause = "request body larger than max_body_bytes"
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge)
		return
	}
	if rt != nil && rt.websocket && isUpgradeRequest(&ctx.Request.Header) {
		s.upgrade(ctx, ex, up)
		return
	}

	out := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(out)
	hostPerAttempt := s.buildUpstreamRequest(out, ctx, ex, up)
	replayable, ok := s.attachRequestBody(out, ctx, ex, limit)
	if !ok {
		return
	}
	s.roundTrip(ctx, ex, out, up, hostPerAttempt, replayable)
}

// buildUpstreamRequest writes the method, target and headers of the
// request sent upstream, byte for byte as received where SPEC §8 asks:
// out is in raw-header mode (fasthttp's Host, User-Agent, Content-Type and
// Cookie fields are plain fields in their places, names in their case) and
// the target is set raw (setUpstreamTarget). It reports whether Host is
// named per attempt (after the server chosen), in the field ex.hostField.
func (s *Server) buildUpstreamRequest(out *fasthttp.Request, ctx *fasthttp.RequestCtx, ex *exchange, up *upstream) (hostPerAttempt bool) {
	in := &ctx.Request
	rt := ex.rt
	out.Header.DisableNormalizing()
	out.Header.DisableSpecialHeader()
	out.Header.SetMethodBytes(in.Header.Method())

	path, query := splitTarget(in.Header.RequestURI())
	ex.uri = appendUpstreamURI(ex.uri[:0], path, query, ex)

	var edit *headerEdit
	if rt != nil {
		edit = rt.requestEdit
	}
	rule, host := upstreamHostRule(edit, up)
	var fwd forwardedRequestHeaders
	fwd, ex.hfields, ex.tokens = copyRequestHeaders(&out.Header, &in.Header, edit, rule, host, ex.hfields, ex.tokens)
	if rule != hostDrop && !fwd.hasHost {
		out.Header.AddBytesKV(hHost, host) // HTTP/1.0 without Host
		fwd.hostKey = hHost
	}
	ex.hostField = fwd.hostKey
	s.setForwardedHeaders(out, ex, fwd, ctx.IsTLS())
	if rt != nil && rt.cache != nil {
		rt.cache.editUpstreamRequest(&out.Header, &in.Header, ex) // before request_headers: what they set is kept
	}
	if edit != nil {
		edit.applyRequest(&out.Header, ex)
	}
	if ex.authCopy != nil {
		applyAuthHeaders(&out.Header, ex)
	}
	setUpstreamTarget(out, ex.uri)
	return rule != hostDrop && (up.opts.Host == HostUpstream || (up.opts.Host == HostPreserve && !fwd.hasHost))
}

// attachRequestBody gives out the client's body. Small bodies are read
// whole, so a retry can send them again and a chunked body's framing is
// checked before anything is forwarded; larger ones, and every body of a
// route with buffer_request = false, stream with bounded memory. ok is
// false when the client's body failed and the answer is written.
func (s *Server) attachRequestBody(out *fasthttp.Request, ctx *fasthttp.RequestCtx, ex *exchange, limit int64) (replayable, ok bool) {
	cl := ctx.Request.Header.ContentLength()
	buffer := ex.st.bufferBodyBytes
	if ex.rt != nil && ex.rt.streamRequest {
		buffer = 0
	}
	if limit == Unlimited {
		limit = 1<<63 - 1
	}
	switch {
	case cl == 0 || cl == -2: // no body
	case cl > 0 && int64(cl) <= buffer:
		var err error
		ex.body, err = readFull(ex.body[:0], ctx.RequestBodyStream(), cl)
		if err != nil {
			s.clientBodyFailed(ctx, ex, err)
			return false, false
		}
		out.SetBodyRaw(ex.body)
	case cl == -1 && buffer > 0: // chunked
		var whole bool
		var err error
		ex.body, whole, err = readUpTo(ex.body[:0], ctx.RequestBodyStream(), min(buffer, limit)+1)
		switch {
		case err != nil:
			s.clientBodyFailed(ctx, ex, err)
			return false, false
		case whole:
			out.SetBodyRaw(ex.body) // forwarded with a Content-Length
		default:
			ex.reqBody = requestBody{prefix: ex.body, r: ctx.RequestBodyStream(), limit: limit, relay: &s.relayBuffers}
			out.SetBodyStream(&ex.reqBody, -1)
			return false, true
		}
	default:
		ex.reqBody = requestBody{r: ctx.RequestBodyStream(), limit: limit, relay: &s.relayBuffers}
		out.SetBodyStream(&ex.reqBody, cl)
		return false, true
	}
	return true, true
}

// roundTrip sends out to the servers of up, one attempt after another by
// the retry rules, and relays the first response.
func (s *Server) roundTrip(ctx *fasthttp.RequestCtx, ex *exchange, out *fasthttp.Request, up *upstream, hostPerAttempt, replayable bool) {
	idempotent := isIdempotent(ctx.Request.Header.Method())
	at := s.attempts(ex, up)
	status := fasthttp.StatusBadGateway
	for {
		now := s.now()
		srv := at.next(now)
		if srv == nil {
			break
		}
		if hostPerAttempt {
			out.Header.SetBytesKV(ex.hostField, bytesOf(srv.hostHeader))
		}
		resp := fasthttp.AcquireResponse()
		resp.Header.SetNoDefaultContentType(true)
		err := srv.do(out, resp, now.Add(at.timeout), at.retry())
		done := s.now()
		at.answered(srv, now, done)
		if err == nil {
			s.relay(ctx, ex, resp)
			return
		}
		fasthttp.ReleaseResponse(resp)
		if ex.reqBody.err != nil {
			err = ex.reqBody.err
		}
		f := at.failed(srv, done, err)
		status = f.status
		if f.final || (f.sent && !(idempotent && replayable)) || (!replayable && ex.reqBody.n > 0) {
			break
		}
	}
	writeError(ctx, status)
}

// appendUpstreamURI builds the origin-form target sent upstream: the path
// byte for byte (with the route's prefix cut when strip_prefix is set, still
// starting with "/", or replaced by the route's rewrite), then the query
// byte for byte.
func appendUpstreamURI(dst, path, query []byte, ex *exchange) []byte {
	rt := ex.rt
	if rt != nil && rt.rewrite != nil {
		return append(rt.rewrite.Append(dst, ex), query...)
	}
	if rt != nil && rt.stripPrefix {
		if cleaned := ex.matchPath; len(cleaned) > 0 && &cleaned[0] != &path[0] {
			// The prefix matched the cleaned path: cut it there, as nginx
			// does, and send the rest escaped again.
			dst = appendEscapedPath(dst, cleaned[len(rt.prefix):], len(cleaned) == len(rt.prefix))
			return append(dst, query...)
		}
		rest := path[len(rt.prefix):]
		if len(rest) == 0 || rest[0] != '/' {
			dst = append(dst, '/')
		}
		dst = append(dst, rest...)
	} else {
		dst = append(dst, path...)
	}
	return append(dst, query...)
}

func (s *Server) setForwardedHeaders(out *fasthttp.Request, ex *exchange, fwd forwardedRequestHeaders, tls bool) {
	ex.xff = ex.xff[:0]
	if len(fwd.xff) > 0 && ex.st.trusted(ex.clientAddr) {
		ex.xff = append(append(ex.xff, fwd.xff...), commaSpace...)
	}
	ex.xff = append(ex.xff, ex.client...)
	out.Header.SetBytesKV(hXForwardedFor, ex.xff)
	if tls {
		out.Header.SetBytesKV(hXForwardedProto, protoHTTPS)
	} else {
		out.Header.SetBytesKV(hXForwardedProto, protoHTTP)
	}
	if len(fwd.host) > 0 {
		out.Header.SetBytesKV(hXForwardedHost, fwd.host)
	}
	if len(fwd.requestID) > 0 {
		ex.requestID = append(ex.requestID[:0], fwd.requestID...)
	} else {
		out.Header.SetBytesKV(hXRequestID, ex.requestID)
	}
}

// relay turns the upstream response into the client's: headers now, the
// body streamed by the server after the handler returns. An error answer
// the route's error pages intercept is left unread: its page replaces it.
func (s *Server) relay(ctx *fasthttp.RequestCtx, ex *exchange, resp *fasthttp.Response) {
	status := resp.StatusCode()
	ex.answeredBy = answeredByUpstream
	ex.upstreamStatus = status
	if accel := resp.Header.Peek("X-Accel-Redirect"); len(accel) > 0 && ex.rt != nil {
		// The upstream hands the answer to another route (usually an
		// internal file route); its own body is dropped, the header never
		// reaches the client, and what it says about the download stays.
		ex.redirectTarget = append(ex.redirectTarget[:0], accel...)
		keepAccelHeaders(&ctx.Response.Header, &resp.Header)
		fasthttp.ReleaseResponse(resp)
		s.redirectInternally(ctx, ex, ex.redirectTarget)
		return
	}
	if ex.rt != nil && ex.rt.errorPages.intercepts(status) {
		fasthttp.ReleaseResponse(resp)
		ex.intercepted = true
		ctx.Response.SetStatusCode(status)
		return
	}
	ex.tokens = copyResponseHeaders(&ctx.Response.Header, &resp.Header, ex.tokens)
	cl := resp.Header.ContentLength()
	noBody := ctx.Request.Header.IsHead() || status == fasthttp.StatusNoContent ||
		status == fasthttp.StatusNotModified || (status >= 100 && status < 200)
	if noBody || !resp.IsBodyStream() || cl == 0 {
		fasthttp.ReleaseResponse(resp)
		if cl >= 0 && status != fasthttp.StatusNoContent {
			ctx.Response.Header.SetContentLength(cl)
		}
		return
	}
	if cl < 0 {
		cl = -1 // chunked to the client, whatever framing the upstream used
	}
	ex.respBody = responseBody{ex: ex, resp: resp}
	if ex.rt != nil && ex.rt.limitRate > 0 {
		ex.respBody.rate, ex.respBody.started = ex.rt.limitRate, time.Now()
	}
	ex.streaming = true
	ctx.Response.SetBodyStream(&ex.respBody, cl)
}

// clientBodyFailed answers a request whose body could not be read.
func (s *Server) clientBodyFailed(ctx *fasthttp.RequestCtx, ex *exchange, err error) {
	ex.cause = "reading client body: " + err.Error()
	writeError(ctx, classify(&clientBodyError{err: err}).status)
}

// readUpTo reads r onto dst until EOF or limit bytes; whole reports EOF.
func readUpTo(dst []byte, r io.Reader, limit int64) ([]byte, bool, error) {
	for int64(len(dst)) < limit {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):min(int64(cap(dst)), limit)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, true, nil
		}
		if err != nil {
			return dst, false, err
		}
	}
	return dst, false, nil
}

// readFull reads exactly n bytes of r onto dst.
func readFull(dst []byte, r io.Reader, n int) ([]byte, error) {
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	_, err := io.ReadFull(r, dst)
	return dst, err
}

// appendEscapedPath appends a decoded path with the bytes that cannot
// stand in a path percent-encoded; empty gets "/".
func appendEscapedPath(dst, p []byte, empty bool) []byte {
	if empty || len(p) == 0 || p[0] != '/' {
		dst = append(dst, '/')
	}
	const hex = "0123456789ABCDEF"
	for _, c := range p {
		if c <= ' ' || c >= 0x7f || c == '%' || c == '?' || c == '#' {
			dst = append(dst, '%', hex[c>>4], hex[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// accelKept are the upstream's fields an X-Accel-Redirect answer keeps,
// as nginx does (ngx_http_upstream_headers_in's redirect flag): what the
// client is to make of the download. Content-Type is among them: the
// file answering keeps the upstream's type when it gave one.
var accelKept = []string{"Content-Type", "Content-Disposition", "Cache-Control", "Expires", "Set-Cookie"}

func keepAccelHeaders(dst *fasthttp.ResponseHeader, src *fasthttp.ResponseHeader) {
	for k, v := range src.All() {
		for _, name := range accelKept {
			if bytesEqualFoldString(k, name) {
				dst.AddBytesKV(k, v)
			}
		}
	}
}

func bytesEqualFoldString(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i]|0x20, s[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}
