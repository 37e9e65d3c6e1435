package proxy

import "github.com/valyala/fasthttp"

// A route is compiled, when its options load, into a short pipeline:
//
//	request steps (access → auth → methods …) → target → response steps
//	(error pages → response headers → compression)
//
// Each step is one small type in a file of its own and knows no other
// step; the order is decided here and in compileRoute, nowhere else. A
// route holds only the steps its options ask for, so a plain route pays
// for none of them.

// requestStep sees a request before its target. It answers the request
// itself (a 403, a 401 …) by writing ctx.Response and returning true.
type requestStep interface {
	onRequest(ctx *fasthttp.RequestCtx, ex *exchange) (answered bool)
}

// target produces the response: forward to an upstream, a fixed answer, or
// a handler of the route's own (the coupon answers).
type target interface {
	serve(ctx *fasthttp.RequestCtx, ex *exchange)
}

// responseStep edits the response after the target (or a request step)
// produced it; the body may still be a stream the server writes later.
type responseStep interface {
	onResponse(ctx *fasthttp.RequestCtx, ex *exchange)
}

// serveRoute runs rt's pipeline for one request.
func (s *Server) serveRoute(ctx *fasthttp.RequestCtx, ex *exchange, rt *route) {
	if !runRequestSteps(rt.requestSteps, ctx, ex) {
		rt.target.serve(ctx, ex)
	}
	for _, step := range rt.responseSteps {
		step.onResponse(ctx, ex)
	}
}

func runRequestSteps(steps []requestStep, ctx *fasthttp.RequestCtx, ex *exchange) bool {
	for _, step := range steps {
		if step.onRequest(ctx, ex) {
			return true
		}
	}
	return false
}

// handlerTarget runs a handler of the route's own.
type handlerTarget struct{ h fasthttp.RequestHandler }

func (t handlerTarget) serve(ctx *fasthttp.RequestCtx, ex *exchange) {
	ex.answeredBy = answeredByHandler
	ctx.SetUserValue(exchangeKey{}, ex)
	t.h(ctx)
	ctx.SetUserValue(exchangeKey{}, nil)
	ex.cache = append(ex.cache, ctx.Response.Header.Peek("X-Cache")...)
}

// upstreamTarget forwards to an upstream group of the live state.
type upstreamTarget struct {
	s  *Server
	up *upstream
}

func (t upstreamTarget) serve(ctx *fasthttp.RequestCtx, ex *exchange) {
	t.s.forward(ctx, ex, t.up)
}
