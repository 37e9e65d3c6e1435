package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// isUpgradeRequest: a GET asking to switch protocols (Connection: upgrade
// and an Upgrade field), SPEC §8.
func isUpgradeRequest(h *fasthttp.RequestHeader) bool {
	if !h.IsGet() {
		return false
	}
	upgrade := false
	hasUpgrade := false
	for k, v := range h.All() {
		switch kindOf(k) {
		case kindConnection:
			if hasToken(v, []byte("upgrade")) {
				upgrade = true
			}
		case kindHopByHop:
			if bytes.EqualFold(k, []byte("Upgrade")) && len(v) > 0 {
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
		if i := bytes.IndexByte(list, ','); i >= 0 {
			t, list = list[:i], list[i+1:]
		} else {
			t, list = list, nil
		}
		if bytes.EqualFold(bytes.TrimSpace(t), tok) {
			return true
		}
	}
	return false
}

// upgrade tunnels an upgrade request. Placeholder until tunnels land: the
// request is forwarded as a plain one, as before.
func (s *Server) upgrade(ctx *fasthttp.RequestCtx, ex *exchange, up *upstream) {
	out := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(out)
	hostPerAttempt := s.buildUpstreamRequest(out, ctx, ex, up)
	s.roundTrip(ctx, ex, out, up, hostPerAttempt, true)
}
