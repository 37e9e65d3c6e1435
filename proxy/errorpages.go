package proxy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/valyala/fasthttp"
)

// errorPagesStep replaces error answers by the route's pages (nginx
// error_page): edgeproxy's own errors always, the upstream's only with
// intercept_errors. A page is a file read when the config loads, or a
// named route that answers instead (with its own status).
type errorPagesStep struct {
	pages     map[int]errorPage
	intercept bool
}

type errorPage struct {
	body        []byte
	contentType []byte
	route       string // "@name" target without '@'; "" for a file
}

func loadErrorPages(pages map[int]string, intercept bool) (*errorPagesStep, error) {
	if len(pages) == 0 {
		return nil, nil
	}
	e := &errorPagesStep{pages: make(map[int]errorPage, len(pages)), intercept: intercept}
	for code, target := range pages {
		if name, ok := strings.CutPrefix(target, "@"); ok {
			e.pages[code] = errorPage{route: name}
			continue
		}
		body, err := os.ReadFile(target)
		if err != nil {
			return nil, fmt.Errorf("error page %d: %w", code, err)
		}
		// The types file routes use (nginx's mime.types): Go's mime
		// package would add "; charset=utf-8", which nginx does not.
		ct := nginxTypes[strings.ToLower(strings.TrimPrefix(filepath.Ext(target), "."))]
		if ct == "" {
			ct = "text/html"
		}
		e.pages[code] = errorPage{body: body, contentType: []byte(ct)}
	}
	return e, nil
}

// intercepts reports whether an upstream answer with this status is to be
// replaced, so relay leaves its body unread.
func (e *errorPagesStep) intercepts(status int) bool {
	if e == nil || !e.intercept {
		return false
	}
	_, ok := e.pages[status]
	return ok
}

func (e *errorPagesStep) onResponse(ctx *fasthttp.RequestCtx, ex *exchange) {
	if ex.inErrorPage {
		return // a page's own failure is answered as it is, never looped
	}
	status := ctx.Response.StatusCode()
	page, ok := e.pages[status]
	if !ok {
		return
	}
	switch ex.answeredBy {
	case answeredByOwnError:
	case answeredByUpstream:
		if !ex.intercepted {
			return
		}
	default:
		return // a fixed answer with a body, or a route handler's answer
	}
	if page.route != "" {
		named := ex.st.named[page.route]
		if named == nil {
			return
		}
		ex.inErrorPage = true
		ctx.Response.Reset()
		ex.answeredBy = answeredByOwnError
		ex.intercepted = false
		ex.srv.serveRoute(ctx, ex, named)
		return
	}
	// A 401's challenge stays, as with nginx's error_page 401.
	ex.scratch = ex.scratch[:0]
	for k, v := range ctx.Response.Header.All() {
		if bytes.EqualFold(k, hWWWAuthenticate) {
			ex.scratch = append(ex.scratch, v...)
			break
		}
	}
	ctx.Response.Reset()
	ctx.Response.SetStatusCode(status)
	ctx.Response.Header.SetServerBytes(serverName)
	if len(ex.scratch) > 0 {
		ctx.Response.Header.SetBytesKV(hWWWAuthenticate, ex.scratch)
	}
	ctx.Response.Header.SetContentTypeBytes(page.contentType)
	ctx.Response.SetBodyRaw(page.body)
}
