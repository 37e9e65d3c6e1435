package proxy

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/edgeproxy/edgeproxy/internal/vars"
)

var _ vars.Source = (*exchange)(nil)

// AppendVar evaluates one variable of SPEC §8 for the exchange's request.
// It reads the request where it lies and allocates nothing.
func (ex *exchange) AppendVar(dst []byte, v *vars.Var) []byte {
	ctx := ex.ctx
	h := &ctx.Request.Header
	switch v.Kind {
	case vars.RemoteAddr:
		return ex.remote().AppendTo(dst)
	case vars.Host:
		return appendLower(dst, stripPort(h.Host()))
	case vars.Scheme:
		if ctx.IsTLS() {
			return append(dst, protoHTTPS...)
		}
		return append(dst, protoHTTP...)
	case vars.RequestURI:
		return append(dst, h.RequestURI()...)
	case vars.URI:
		// nginx's $uri: the clean path being served, which an internal
		// redirect changes.
		if ex.matchPath != nil {
			return append(dst, ex.matchPath...)
		}
		path, _ := splitTarget(h.RequestURI())
		return append(dst, path...)
	case vars.Args:
		_, query := splitTarget(h.RequestURI())
		if len(query) > 0 {
			query = query[1:]
		}
		return append(dst, query...)
	case vars.RequestMethod:
		return append(dst, h.Method()...)
	case vars.RequestID:
		return append(dst, ex.requestID...)
	case vars.ServerPort:
		if a, ok := ctx.LocalAddr().(*net.TCPAddr); ok {
			return strconv.AppendInt(dst, int64(a.Port), 10)
		}
		return dst
	case vars.HTTP:
		return append(dst, peekFold(h, v.Name)...)
	case vars.Cookie:
		return append(dst, h.CookieBytes(v.Name)...)
	case vars.Arg:
		return append(dst, ctx.QueryArgs().PeekBytes(v.Name)...)
	case vars.UpstreamAddr:
		return append(dst, ex.upstreamAddr...)
	case vars.UpstreamStatus:
		if ex.upstreamStatus == 0 {
			return dst
		}
		return strconv.AppendInt(dst, int64(ex.upstreamStatus), 10)
	case vars.Capture:
		return append(dst, ex.capture(v.Index)...)
	}
	return dst
}

// capture is $n of the route's path_regex; empty when there is none.
func (ex *exchange) capture(n int) []byte {
	if 2*n+1 >= len(ex.captures) || ex.captures[2*n] < 0 {
		return nil
	}
	return ex.matchPath[ex.captures[2*n]:ex.captures[2*n+1]]
}

// peekFold finds a request field by name in any case: the server keeps
// names as sent, so fasthttp's Peek (byte for byte) would miss "x-real-ip".
func peekFold(h *fasthttp.RequestHeader, name []byte) []byte {
	for k, v := range h.All() {
		if bytes.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

func appendLower(dst, s []byte) []byte {
	for _, c := range s {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// remote is $remote_addr: the peer, or, when the peer is a trusted proxy,
// the last address in X-Forwarded-For that is not one (nginx's real_ip
// with real_ip_recursive on). Computed once per request, when first read.
func (ex *exchange) remote() netip.Addr {
	if ex.remoteSet {
		return ex.remoteAddr
	}
	ex.remoteSet = true
	ex.remoteAddr = ex.clientAddr
	st := ex.st
	if st == nil || !st.trusted(ex.clientAddr) {
		return ex.remoteAddr
	}
	xff := peekFold(&ex.ctx.Request.Header, hXForwardedFor)
	for len(xff) > 0 {
		var item []byte
		if i := bytes.LastIndexByte(xff, ','); i >= 0 {
			item, xff = xff[i+1:], xff[:i]
		} else {
			item, xff = xff, nil
		}
		a, err := netip.ParseAddr(string(bytes.TrimSpace(item)))
		if err != nil {
			break
		}
		ex.remoteAddr = a.Unmap()
		if !st.trusted(ex.remoteAddr) {
			break
		}
	}
	return ex.remoteAddr
}
