package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// WebSocket and other upgrades (SPEC §8): the request goes upstream over a
// connection of its own, dialed here rather than through the HostClient,
// which would pool a 101 connection as if it were idle. A 101 answer turns
// both connections into a tunnel (upgrade_tunnel.go); any other answer is
// relayed like a normal response.

var (
	hConnection    = []byte("Connection")
	hUpgrade       = []byte("Upgrade")
	tokenUpgrade   = []byte("upgrade")
	switchingProto = []byte("HTTP/1.1 101 Switching Protocols\r\n")
)

// isUpgradeRequest: a GET without a body asking to switch protocols
// (Connection: upgrade and an Upgrade field), SPEC §8. An upgrade request
// with a body is rare enough to be forwarded as a plain request.
func isUpgradeRequest(h *fasthttp.RequestHeader) bool {
	if !h.IsGet() {
		return false
	}
	if cl := h.ContentLength(); cl != 0 && cl != -2 {
		return false
	}
	upgrade := false
	hasUpgrade := false
	for k, v := range h.All() {
		switch kindOf(k) {
		case kindConnection:
			if hasToken(v, tokenUpgrade) {
				upgrade = true
			}
		case kindHopByHop:
			if bytes.EqualFold(k, hUpgrade) && len(v) > 0 {
				hasUpgrade = true
			}
		}
	}
	return upgrade && hasUpgrade
}

// hasToken reports whether a comma-separated list holds tok (any case).
func hasToken(list, tok []byte) bool {
	for len(list) > 0 {
		var t []byte
		t, list, _ = bytes.Cut(list, comma)
		if bytes.EqualFold(bytes.TrimSpace(t), tok) {
			return true
		}
	}
	return false
}

// upgrade forwards an upgrade request by the retry rules of SPEC §4 and
// either opens a tunnel (101) or relays the answer.
func (s *Server) upgrade(ctx *fasthttp.RequestCtx, ex *exchange, up *upstream) {
	if !s.tunnels.reserve(ex.st.opts.MaxUpgradedConns) {
		ex.cause = "max_upgraded_conns reached"
		writeError(ctx, fasthttp.StatusServiceUnavailable)
		return
	}
	reserved := true
	defer func() {
		if reserved {
			s.tunnels.unreserve()
		}
	}()

	out := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(out)
	hostPerAttempt := s.buildUpstreamRequest(out, ctx, ex, up)
	// Connection and Upgrade were dropped as hop-by-hop; an upgrade
	// request carries them on (§4).
	for k, v := range ctx.Request.Header.All() {
		if len(k) == len(hUpgrade) && bytes.EqualFold(k, hUpgrade) {
			out.Header.AddBytesKV(k, v)
		}
	}
	out.Header.AddBytesKV(hConnection, tokenUpgrade)

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
		conn, br, resp, err := handshake(srv, &out.Header, now.Add(at.timeout), at.retry())
		done := s.now()
		at.answered(srv, now, done)
		if err == nil {
			if resp.StatusCode() == fasthttp.StatusSwitchingProtocols {
				reserved = false // the tunnel holds the slot now
				s.openTunnel(ctx, ex, conn, br, resp)
				return
			}
			// Refused: relay the answer; its body closes the connection.
			relayed := fasthttp.AcquireResponse()
			resp.Header.CopyTo(&relayed.Header)
			relayed.SetBodyStream(&refusedBody{resp: resp, conn: conn}, resp.Header.ContentLength())
			s.relay(ctx, ex, relayed)
			return
		}
		f := at.failed(srv, done, err)
		status = f.status
		if f.final {
			break
		}
	}
	writeError(ctx, status)
}

// handshake sends the request head to srv on a new connection and reads
// the response head; the body, if any, is left to stream from br.
func handshake(srv *server, head *fasthttp.RequestHeader, deadline time.Time, attempt int) (net.Conn, *bufio.Reader, *fasthttp.Response, error) {
	srv.count(attempt)
	srv.inflight.Add(1)
	defer srv.inflight.Add(-1)

	conn, err := srv.dialer.dialRaw(srv.hc.Addr)
	if err != nil {
		return nil, nil, nil, err
	}
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write(head.Header()); err != nil {
		conn.Close()
		return nil, nil, nil, fmt.Errorf("sending upgrade request: %w", err)
	}
	br := bufio.NewReaderSize(conn, 4<<10)
	resp := fasthttp.AcquireResponse()
	resp.Header.DisableNormalizing()
	resp.Header.SetNoDefaultContentType(true)
	resp.StreamBody = true
	if err := resp.Read(br); err != nil {
		fasthttp.ReleaseResponse(resp)
		conn.Close()
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, nil, nil, fmt.Errorf("reading upgrade response: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, br, resp, nil
}

// refusedBody streams the body of a non-101 answer and closes its
// connection with it: a connection dialed for one upgrade is never reused.
type refusedBody struct {
	resp *fasthttp.Response
	conn net.Conn
}

func (b *refusedBody) Read(p []byte) (int, error) {
	r := b.resp.BodyStream()
	if r == nil {
		return 0, io.EOF
	}
	return r.Read(p)
}

func (b *refusedBody) Close() error {
	fasthttp.ReleaseResponse(b.resp)
	return b.conn.Close()
}

// openTunnel answers 101 and hands both connections to a tunnel once the
// handler has returned (fasthttp's Hijack). The 101 itself is written by
// the tunnel, after the route's response steps have seen it.
func (s *Server) openTunnel(ctx *fasthttp.RequestCtx, ex *exchange, conn net.Conn, br *bufio.Reader, resp *fasthttp.Response) {
	t := s.tunnels.newTunnel(s, ex, conn, br, ex.st.opts.UpgradeIdleTimeout)
	// The upstream's Upgrade fields and Connection: upgrade go to the
	// client as sent; the other fields go through the route's steps.
	for k, v := range resp.Header.All() {
		if len(k) == len(hUpgrade) && bytes.EqualFold(k, hUpgrade) {
			t.upgradeFields = appendField(t.upgradeFields, k, v)
		}
	}
	t.upgradeFields = appendField(t.upgradeFields, hConnection, tokenUpgrade)
	ex.tokens = copyResponseHeaders(&ctx.Response.Header, &resp.Header, ex.tokens)
	fasthttp.ReleaseResponse(resp)

	if !s.tunnels.add(t) {
		t.closeConns()
		s.tunnels.unreserve()
		ex.cause = "shutting down"
		writeError(ctx, fasthttp.StatusServiceUnavailable)
		return
	}
	ex.answeredBy = answeredByUpstream
	ex.upstreamStatus = fasthttp.StatusSwitchingProtocols
	ctx.Response.SetStatusCode(fasthttp.StatusSwitchingProtocols)
	// The request counts and times to its 101; the access log line is
	// written when the tunnel ends.
	if ex.metrics != nil {
		ex.metrics.observe(fasthttp.StatusSwitchingProtocols, s.now().Sub(ex.start).Seconds())
		ex.metrics = nil
	}
	ex.streaming = true // the tunnel finishes the exchange
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) { t.run(ctx, c) })
}

// appendClientHead appends the 101 the client gets: the status line, the
// response's fields as the route's steps left them (hop-by-hop ones
// dropped), then the upgrade fields.
func appendClientHead(dst []byte, h *fasthttp.ResponseHeader, upgradeFields []byte) []byte {
	dst = append(dst, switchingProto...)
	for k, v := range h.All() {
		if kind := kindOf(k); kind <= kindHopByHop || kind == kindContentLength {
			continue
		}
		dst = appendField(dst, k, v)
	}
	dst = append(dst, upgradeFields...)
	return append(dst, '\r', '\n')
}

func appendField(dst, k, v []byte) []byte {
	dst = append(dst, k...)
	dst = append(dst, ':', ' ')
	dst = append(dst, v...)
	return append(dst, '\r', '\n')
}
