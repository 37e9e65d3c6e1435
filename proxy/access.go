package proxy

import (
	"github.com/valyala/fasthttp"
)

// accessStep is a route's allow/deny list (nginx allow/deny), judged on
// $remote_addr: the first matching rule decides; none matching allows.
type accessStep struct{ rules []AccessRule }

func (a *accessStep) onRequest(ctx *fasthttp.RequestCtx, ex *exchange) bool {
	addr := ex.remote()
	for _, r := range a.rules {
		if r.All || r.Prefix.Contains(addr) {
			if r.Allow {
				return false
			}
			ex.cause = "denied by access rule"
			writeError(ctx, fasthttp.StatusForbidden)
			return true
		}
	}
	return false
}
