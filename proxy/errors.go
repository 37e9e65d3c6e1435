package proxy

import (
	"errors"
	"net"
	"os"

	"github.com/valyala/fasthttp"
)

// errBodyTooLarge is returned by the request body reader once a streamed
// (chunked) body passes max_body_bytes.
var errBodyTooLarge = errors.New("request body larger than max_body_bytes")

// clientBodyError wraps a failure to read the request body from the client.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "reading client body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// failure is the one decision made about a failed upstream attempt.
type failure struct {
	status int
	// sent: some of the request may have reached the server, so only an
	// idempotent request may be tried again.
	sent bool
	// health: the attempt counts against the server's passive health.
	health bool
	// final: no other server would do better (client's fault, timeout).
	final bool
}

// classify maps an error from an upstream attempt to what the client gets
// and what happens next. It is the only place errors become statuses.
func classify(err error) failure {
	var de *dialError
	var ce *clientBodyError
	switch {
	case errors.Is(err, errBodyTooLarge):
		return failure{status: fasthttp.StatusRequestEntityTooLarge, sent: true, final: true}
	case errors.As(err, &ce):
		if isTimeout(ce.err) {
			return failure{status: fasthttp.StatusRequestTimeout, sent: true, final: true}
		}
		return failure{status: fasthttp.StatusBadRequest, sent: true, final: true}
	case errors.As(err, &de):
		return failure{status: fasthttp.StatusBadGateway, health: true}
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return failure{status: fasthttp.StatusBadGateway}
	case errors.Is(err, fasthttp.ErrTimeout) || isTimeout(err):
		return failure{status: fasthttp.StatusGatewayTimeout, sent: true, health: true, final: true}
	default:
		// Reset, closed before a response, malformed response.
		return failure{status: fasthttp.StatusBadGateway, sent: true, health: true}
	}
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Client-facing bodies: short, the same for every cause.
var errorBodies = map[int][]byte{
	fasthttp.StatusBadRequest:                  []byte(`{"error":"bad request"}`),
	fasthttp.StatusUnauthorized:                []byte(`{"error":"unauthorized"}`),
	fasthttp.StatusForbidden:                   []byte(`{"error":"forbidden"}`),
	fasthttp.StatusNotFound:                    []byte(`{"error":"no route"}`),
	fasthttp.StatusMethodNotAllowed:            []byte(`{"error":"method not allowed"}`),
	fasthttp.StatusRequestTimeout:              []byte(`{"error":"request timeout"}`),
	fasthttp.StatusRequestEntityTooLarge:       []byte(`{"error":"request body too large"}`),
	fasthttp.StatusRequestHeaderFieldsTooLarge: []byte(`{"error":"request header fields too large"}`),
	fasthttp.StatusInternalServerError:         []byte(`{"error":"internal error"}`),
	fasthttp.StatusBadGateway:                  []byte(`{"error":"bad gateway"}`),
	fasthttp.StatusServiceUnavailable:          []byte(`{"error":"service unavailable"}`),
	fasthttp.StatusGatewayTimeout:              []byte(`{"error":"gateway timeout"}`),
	fasthttp.StatusHTTPVersionNotSupported:     []byte(`{"error":"http version not supported"}`),
}

var (
	serverName      = []byte("edgeproxy")
	jsonContentType = []byte("application/json")
)

// writeError renders the client-facing error for status.
func writeError(ctx *fasthttp.RequestCtx, status int) {
	resp := &ctx.Response
	resp.Reset()
	resp.SetStatusCode(status)
	resp.Header.SetServerBytes(serverName)
	resp.Header.SetContentTypeBytes(jsonContentType)
	body, ok := errorBodies[status]
	if !ok {
		body = []byte(`{"error":"error"}`)
	}
	resp.SetBodyRaw(body)
	switch status {
	case fasthttp.StatusBadRequest, fasthttp.StatusRequestTimeout, fasthttp.StatusRequestEntityTooLarge,
		fasthttp.StatusRequestHeaderFieldsTooLarge, fasthttp.StatusHTTPVersionNotSupported:
		// The request's framing is in doubt or its body unread: the
		// connection cannot carry another request.
		ctx.SetConnectionClose()
	}
}

// parseErrorStatus maps fasthttp's request-parsing errors.
func parseErrorStatus(err error) int {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		return fasthttp.StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return fasthttp.StatusRequestEntityTooLarge
	case isTimeout(err):
		return fasthttp.StatusRequestTimeout
	default:
		return fasthttp.StatusBadRequest
	}
}
