package proxy

import (
	"io"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

var (
	protoHTTP  = []byte("http")
	protoHTTPS = []byte("https")
	commaSpace = []byte(", ")
)

// forward sends the request to up, trying other servers by the retry rules
// of SPEC §4, and relays the response. rt may be nil (a handler forwarding
// to a fallback upstream), in which case nothing is stripped.
func (s *Server) forward(ctx *fasthttp.RequestCtx, ex *exchange, st *state, rt *route, up *upstream) {
	in := &ctx.Request
	cl := in.Header.ContentLength()
	if int64(cl) > st.maxBodyBytes {
		ex.cause = "request body larger than max_body_bytes"
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge)
		return
	}

	out := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(out)
	out.Header.DisableNormalizing()
	out.Header.SetMethodBytes(in.Header.Method())

	path, query := splitTarget(in.Header.RequestURI())
	ex.uri = appendUpstreamURI(ex.uri[:0], path, query, rt)
	out.SetRequestURIBytes(ex.uri)

	var fwd forwardedRequestHeaders
	fwd, ex.hfields, ex.tokens = copyRequestHeaders(&out.Header, &in.Header, ex.hfields, ex.tokens)
	s.setForwardedHeaders(out, ex, st, fwd, ctx.IsTLS())
	hostPerAttempt := false
	switch up.opts.Host {
	case HostPreserve:
		if len(fwd.host) > 0 {
			out.Header.SetHostBytes(fwd.host)
		} else {
			hostPerAttempt = true // HTTP/1.0 without Host: name the server
		}
	case HostUpstream:
		hostPerAttempt = true
	default:
		out.Header.SetHost(up.opts.Host)
	}

	// Small bodies are read whole, so a retry can send them again and a
	// chunked body's framing is checked before anything is forwarded;
	// larger ones stream with bounded memory.
	replayable := true
	switch {
	case cl == 0 || cl == -2: // no body
	case cl > 0 && int64(cl) <= st.bufferBodyBytes:
		var err error
		ex.body, err = readFull(ex.body[:0], ctx.RequestBodyStream(), cl)
		if err != nil {
			s.clientBodyFailed(ctx, ex, err)
			return
		}
		out.SetBodyRaw(ex.body)
	case cl == -1: // chunked
		var whole bool
		var err error
		ex.body, whole, err = readUpTo(ex.body[:0], ctx.RequestBodyStream(), min(st.bufferBodyBytes, st.maxBodyBytes)+1)
		switch {
		case err != nil:
			s.clientBodyFailed(ctx, ex, err)
			return
		case whole:
			out.SetBodyRaw(ex.body) // forwarded with a Content-Length
		default:
			ex.reqBody = requestBody{prefix: ex.body, r: ctx.RequestBodyStream(), limit: st.maxBodyBytes}
			out.SetBodyStream(&ex.reqBody, -1)
			replayable = false
		}
	default:
		ex.reqBody = requestBody{r: ctx.RequestBodyStream(), limit: st.maxBodyBytes}
		out.SetBodyStream(&ex.reqBody, cl)
		replayable = false
	}

	timeout := up.opts.ResponseTimeout
	if rt != nil && rt.timeout > 0 {
		timeout = time.Duration(rt.timeout)
	}
	idempotent := isIdempotent(in.Header.Method())
	var tried uint64
	status := fasthttp.StatusBadGateway
	for attempt := 0; attempt <= up.opts.Retries; attempt++ {
		now := s.now()
		i := up.pick(now, tried)
		if i < 0 {
			if attempt == 0 {
				ex.cause = "no available server in upstream " + up.name
			}
			break
		}
		tried |= 1 << uint(i%64)
		srv := up.servers[i]
		if hostPerAttempt {
			out.Header.SetHost(srv.addr)
		}

		resp := fasthttp.AcquireResponse()
		resp.Header.SetNoDefaultContentType(true)
		srv.requests.Add(1)
		srv.metrics.attempts.Inc()
		if attempt > 0 {
			srv.metrics.retries.Inc()
		}
		if srv.inflight.Add(1) > int64(up.opts.MaxConnsPerServer) {
			srv.metrics.poolWaits.Inc()
		}
		err := srv.hc.DoDeadline(out, resp, now.Add(timeout))
		srv.inflight.Add(-1)
		done := s.now()
		ex.upstreamAddr = srv.addr
		ex.upstreamDuration = done.Sub(now)
		if err == nil {
			s.relay(ctx, ex, resp)
			return
		}
		fasthttp.ReleaseResponse(resp)

		if ex.reqBody.err != nil {
			err = ex.reqBody.err
		}
		f := classify(err)
		status = f.status
		ex.cause = err.Error()
		if f.health && srv.fail(done, up.opts.MaxFails, up.opts.FailTimeout) {
			s.log.Warn("upstream server taken out by passive health check",
				zap.String("upstream", up.name), zap.String("server", srv.addr), zap.Error(err))
		}
		if f.final || (f.sent && !(idempotent && replayable)) || (!replayable && ex.reqBody.n > 0) {
			break
		}
	}
	writeError(ctx, status)
}

// appendUpstreamURI builds the origin-form target sent upstream: the path
// byte for byte (with the route's prefix cut when strip_prefix is set, still
// starting with "/"), then the query byte for byte.
func appendUpstreamURI(dst, path, query []byte, rt *route) []byte {
	if rt != nil && rt.stripPrefix {
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

func (s *Server) setForwardedHeaders(out *fasthttp.Request, ex *exchange, st *state, fwd forwardedRequestHeaders, tls bool) {
	ex.xff = ex.xff[:0]
	if len(fwd.xff) > 0 && st.trusted(ex.clientAddr) {
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
// body streamed by the server after the handler returns.
func (s *Server) relay(ctx *fasthttp.RequestCtx, ex *exchange, resp *fasthttp.Response) {
	ex.tokens = copyResponseHeaders(&ctx.Response.Header, &resp.Header, ex.tokens)
	cl := resp.Header.ContentLength()
	status := resp.StatusCode()
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
