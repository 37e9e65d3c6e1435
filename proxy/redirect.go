package proxy

import (
	"github.com/valyala/fasthttp"
)

// maxInternalRedirects is nginx's limit; past it the request is a 500.
const maxInternalRedirects = 10

// redirectInternally answers the request as if it had asked for target
// (a path, maybe with a query): the route that path matches, internal
// routes included, serves it. try_files fallbacks and an upstream's
// X-Accel-Redirect come here. target may point into ex.scratch; it is
// copied first.
func (s *Server) redirectInternally(ctx *fasthttp.RequestCtx, ex *exchange, target []byte) {
	ex.redirects++
	if ex.redirects > maxInternalRedirects {
		ex.cause = "more than 10 internal redirects"
		writeError(ctx, fasthttp.StatusInternalServerError)
		return
	}
	p, _ := splitTarget(target)
	ex.redirectPath = append(ex.redirectPath[:0], p...)
	var err error
	if ex.matchPath, ex.normPath, err = matchPath(ex.normPath, ex.redirectPath); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest)
		return
	}
	ex.internalRedirect = true
	ex.captures = ex.captures[:0]
	rt := ex.st.router.match(ctx.Request.Header.Host(), ex.matchPath, ex)
	if rt == nil {
		ex.cause = "internal redirect: no route"
		writeError(ctx, fasthttp.StatusNotFound)
		return
	}
	ex.rt = rt
	ex.route = rt.name
	s.serveRoute(ctx, ex, rt)
}
