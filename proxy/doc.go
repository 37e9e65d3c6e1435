// Package proxy is edgeproxy's HTTP/1.1 data path: it accepts client
// connections, routes each request by host and longest path prefix, and
// either forwards it to an upstream group over pooled keep-alive
// connections or hands it to a route's own handler (the coupon answers are
// one such handler; this package knows nothing of them).
//
// Rules a caller keeps:
//   - Options are turned into live state whole: Server.Reload builds a new
//     route table and upstream set, swaps it in atomically, and closes the
//     pools of upstreams that are gone. Requests in flight finish on the
//     state they started with.
//   - Nothing from a *fasthttp.RequestCtx is kept after a handler returns,
//     except by the streamed response body, which owns its exchange until
//     the server has written it and closed the stream.
//   - Errors become status codes in one place (errors.go); the text a
//     client sees never carries the internal cause, which goes to the log.
package proxy
