package proxy

import (
	"net"

	"github.com/valyala/fasthttp"

	"github.com/edgeproxy/edgeproxy/internal/vars"
)

// answer is a route's fixed answer (nginx `return`): a status with a
// Location for redirects or a body, both possibly with variables.
type answer struct {
	status      int
	location    *vars.Template // nil: none
	body        *vars.Template // nil: none
	contentType []byte
}

// statusCloseWithoutAnswer is nginx's 444: close the connection, send nothing.
const statusCloseWithoutAnswer = 444

func (a *answer) serve(ctx *fasthttp.RequestCtx, ex *exchange) {
	if a.status == statusCloseWithoutAnswer {
		ex.cause = "return 444"
		ex.answeredBy = answeredByReturn
		ctx.Response.SetStatusCode(statusCloseWithoutAnswer)
		ctx.HijackSetNoResponse(true)
		ctx.Hijack(func(net.Conn) {}) // the server closes the connection after
		return
	}
	resp := &ctx.Response
	resp.SetStatusCode(a.status)
	resp.Header.SetServerBytes(serverName)
	if a.location != nil {
		ex.scratch = a.location.Append(ex.scratch[:0], ex)
		resp.Header.SetBytesKV(hLocation, ex.scratch)
	}
	if a.body == nil {
		// A bodiless 4xx/5xx is edgeproxy's own error: error_pages apply,
		// as they do to nginx's `return 404;`.
		if a.status < 400 {
			ex.answeredBy = answeredByReturn
		}
		return
	}
	ex.answeredBy = answeredByReturn
	resp.Header.SetContentTypeBytes(a.contentType)
	if b, ok := a.body.Static(); ok {
		resp.SetBodyRaw(b) // shared, never written to
		return
	}
	resp.SetBody(a.body.Append(ex.scratch[:0], ex))
}

var hLocation = []byte("Location")
