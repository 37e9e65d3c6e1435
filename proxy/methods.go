package proxy

import (
	"bytes"
	"strings"

	"github.com/valyala/fasthttp"
)

// methodsStep answers 405 with Allow to methods a route does not list
// (nginx limit_except). GET allows HEAD, as in nginx.
type methodsStep struct {
	allowed [][]byte
	allow   []byte // the Allow value
}

func newMethodsStep(methods []string) *methodsStep {
	m := &methodsStep{}
	list := append([]string(nil), methods...)
	hasGet, hasHead := false, false
	for _, x := range list {
		hasGet = hasGet || x == "GET"
		hasHead = hasHead || x == "HEAD"
	}
	if hasGet && !hasHead {
		list = append(list, "HEAD")
	}
	for _, x := range list {
		m.allowed = append(m.allowed, []byte(x))
	}
	m.allow = []byte(strings.Join(list, ", "))
	return m
}

func (m *methodsStep) onRequest(ctx *fasthttp.RequestCtx, ex *exchange) bool {
	method := ctx.Request.Header.Method()
	for _, a := range m.allowed {
		if bytes.Equal(a, method) {
			return false
		}
	}
	ex.cause = "method not allowed on this route"
	writeError(ctx, fasthttp.StatusMethodNotAllowed)
	ctx.Response.Header.SetBytesKV(hAllow, m.allow)
	return true
}

var hAllow = []byte("Allow")
