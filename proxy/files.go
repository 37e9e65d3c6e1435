package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgeproxy/edgeproxy/internal/vars"
)

// fileTarget serves files from a root folder (nginx root, index,
// try_files, expires). Files are opened through an os.Root, so no path —
// "..", percent-encoded dots, or a symlink pointing outside — reaches
// anything outside the folder: the kernel walk refuses it.
type fileTarget struct {
	s        *Server
	root     *os.Root
	dir      string
	index    []string
	tryFiles []*vars.Template
	fallback tryFallback
	maxAge   time.Duration
}

// tryFallback is try_files' last entry: a path to redirect to
// internally, a named route, or a status.
type tryFallback struct {
	path   *vars.Template
	named  string
	status int
}

func newFileTarget(s *Server, ro RouteOptions) (*fileTarget, error) {
	root, err := os.OpenRoot(ro.Root)
	if err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	t := &fileTarget{s: s, root: root, dir: ro.Root, index: ro.Index, maxAge: ro.Expires}
	if len(t.index) == 0 {
		t.index = []string{"index.html"}
	}
	for i, f := range ro.TryFiles {
		last := i == len(ro.TryFiles)-1
		switch {
		case last && strings.HasPrefix(f, "@"):
			t.fallback.named = f[1:]
		case last && strings.HasPrefix(f, "="):
			t.fallback.status, err = strconv.Atoi(f[1:])
			if err != nil {
				return nil, fmt.Errorf("try_files: %q", f)
			}
		default:
			tpl, err := vars.Parse(f)
			if err != nil {
				return nil, fmt.Errorf("try_files: %w", err)
			}
			if last {
				t.fallback.path = tpl
			} else {
				t.tryFiles = append(t.tryFiles, tpl)
			}
		}
	}
	return t, nil
}

func (t *fileTarget) serve(ctx *fasthttp.RequestCtx, ex *exchange) {
	ex.answeredBy = answeredByOwnError
	if !ctx.IsGet() && !ctx.IsHead() {
		ex.cause = "method not allowed on files"
		writeError(ctx, fasthttp.StatusMethodNotAllowed)
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		return
	}
	if len(t.tryFiles) == 0 && t.fallback == (tryFallback{}) {
		t.serveUnder(ctx, ex, ex.matchPath, true)
		return
	}
	for _, tpl := range t.tryFiles {
		ex.scratch = tpl.Append(ex.scratch[:0], ex)
		if t.exists(ex.scratch) {
			t.serveUnder(ctx, ex, ex.scratch, false)
			return
		}
	}
	switch fb := t.fallback; {
	case fb.status != 0:
		ex.cause = "try_files: no file"
		writeError(ctx, fb.status)
	case fb.named != "":
		named := ex.st.named[fb.named]
		if named == nil {
			writeError(ctx, fasthttp.StatusNotFound)
			return
		}
		ex.internalRedirect = true
		t.s.serveRoute(ctx, ex, named)
	case fb.path != nil:
		ex.scratch = fb.path.Append(ex.scratch[:0], ex)
		t.s.redirectInternally(ctx, ex, ex.scratch)
	}
}

// exists is try_files' test of one entry: a file, or with a trailing
// slash a folder.
func (t *fileTarget) exists(p []byte) bool {
	name, ok := rootRelative(p)
	if !ok {
		return false
	}
	fi, err := t.root.Stat(name)
	if err != nil {
		return false
	}
	if len(p) > 0 && p[len(p)-1] == '/' {
		return fi.IsDir()
	}
	return fi.Mode().IsRegular()
}

// rootRelative turns a clean request path into a name for os.Root.
func rootRelative(p []byte) (string, bool) {
	name := path.Clean("/" + string(p))
	if strings.ContainsRune(name, 0) {
		return "", false
	}
	if name == "/" {
		return ".", true
	}
	return name[1:], true
}

// serveUnder answers with the file at request path p: a folder's index
// when p ends in '/', a redirect to p+"/" for a folder without one.
func (t *fileTarget) serveUnder(ctx *fasthttp.RequestCtx, ex *exchange, p []byte, redirectDirs bool) {
	name, ok := rootRelative(p)
	if !ok {
		writeError(ctx, fasthttp.StatusBadRequest)
		return
	}
	f, fi, err := t.open(name)
	if err == nil && fi.IsDir() {
		f.Close()
		if len(p) == 0 || p[len(p)-1] != '/' {
			if redirectDirs {
				t.redirectToFolder(ctx, ex)
				return
			}
		}
		f, fi, name, err = t.openIndex(name)
	}
	if err != nil {
		ex.cause = "file: " + err.Error()
		switch {
		case errors.Is(err, fs.ErrNotExist):
			writeError(ctx, fasthttp.StatusNotFound)
		case errors.Is(err, fs.ErrPermission):
			writeError(ctx, fasthttp.StatusForbidden)
		default:
			// Escapes from the root are refused by os.Root: not found.
			writeError(ctx, fasthttp.StatusNotFound)
		}
		return
	}
	t.s.sendFile(ctx, ex, t.root, f, fi, name, t.maxAge)
}

func (t *fileTarget) open(name string) (*os.File, fs.FileInfo, error) {
	f, err := t.root.Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

func (t *fileTarget) openIndex(dir string) (*os.File, fs.FileInfo, string, error) {
	for _, idx := range t.index {
		name := path.Join(dir, idx)
		f, fi, err := t.open(name)
		if err == nil && fi.Mode().IsRegular() {
			return f, fi, name, nil
		}
		if f != nil {
			f.Close()
		}
	}
	return nil, nil, "", fs.ErrNotExist
}

// redirectToFolder is nginx's 301 for a folder asked without its slash.
func (t *fileTarget) redirectToFolder(ctx *fasthttp.RequestCtx, ex *exchange) {
	raw, query := splitTarget(ctx.Request.Header.RequestURI())
	ex.scratch = append(append(append(ex.scratch[:0], raw...), '/'), query...)
	ctx.Response.SetStatusCode(fasthttp.StatusMovedPermanently)
	ctx.Response.Header.SetServerBytes(serverName)
	ctx.Response.Header.SetBytesKV(hLocation, ex.scratch)
	ex.answeredBy = answeredByReturn
}

// sendFile answers with an open regular file: validators, conditional
// requests, a single byte range, precompressed siblings, expires.
func (s *Server) sendFile(ctx *fasthttp.RequestCtx, ex *exchange, root *os.Root, f *os.File, fi fs.FileInfo, name string, maxAge time.Duration) {
	if !fi.Mode().IsRegular() {
		f.Close()
		writeError(ctx, fasthttp.StatusNotFound)
		return
	}
	ex.answeredBy = answeredByReturn
	resp := &ctx.Response
	h := &resp.Header
	h.SetServerBytes(serverName)
	ctype := nginxTypes[strings.ToLower(strings.TrimPrefix(path.Ext(name), "."))]
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	if len(h.ContentType()) == 0 { // an X-Accel-Redirect's upstream may have named it
		h.SetContentType(ctype)
	}
	mod := fi.ModTime().UTC().Truncate(time.Second)
	h.Set("Last-Modified", mod.Format(http1Time))
	// nginx's ETag: hex mtime and size.
	ex.scratch = append(ex.scratch[:0], '"')
	ex.scratch = strconv.AppendInt(ex.scratch, mod.Unix(), 16)
	ex.scratch = append(ex.scratch, '-')
	ex.scratch = strconv.AppendInt(ex.scratch, fi.Size(), 16)
	ex.scratch = append(ex.scratch, '"')
	h.SetBytesKV(hETag, ex.scratch)
	h.Set("Accept-Ranges", "bytes")
	if maxAge > 0 {
		h.Set("Cache-Control", "max-age="+strconv.FormatInt(int64(maxAge/time.Second), 10))
		h.Set("Expires", s.now().Add(maxAge).UTC().Format(http1Time))
	}

	if notModified(&ctx.Request.Header, ex.scratch, mod) {
		f.Close()
		resp.SetStatusCode(fasthttp.StatusNotModified)
		resp.SkipBody = true
		return
	}
	size := fi.Size()
	if sib, sfi, coding := precompressed(root, fi, name, ctx); sib != nil {
		f.Close()
		f, size = sib, sfi.Size()
		h.Set("Content-Encoding", coding)
		h.Add("Vary", "Accept-Encoding")
		h.Del("Accept-Ranges")
	} else if rng := ctx.Request.Header.Peek("Range"); len(rng) > 0 && ifRangeHolds(&ctx.Request.Header, ex.scratch, mod) {
		start, end, ok := parseRange(rng, size)
		if !ok {
			f.Close()
			resp.SetStatusCode(fasthttp.StatusRequestedRangeNotSatisfiable)
			h.Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
			return
		}
		if _, err := f.Seek(start, io.SeekStart); err == nil {
			resp.SetStatusCode(fasthttp.StatusPartialContent)
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, size))
			size = end - start + 1
		}
	}
	if ctx.IsHead() {
		f.Close()
		resp.SkipBody = true
		h.SetContentLength(int(size))
		return
	}
	resp.SetBodyStream(&fileBody{f: f, r: io.LimitedReader{R: f, N: size}}, int(size))
	ex.bodySize = size
}

// fileBody is a file's bytes (a range of them) as a response body; the
// server closes it once written.
type fileBody struct {
	f *os.File
	r io.LimitedReader
}

func (b *fileBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *fileBody) Close() error               { return b.f.Close() }

const http1Time = "Mon, 02 Jan 2006 15:04:05 GMT"

// notModified applies If-None-Match (first) and If-Modified-Since.
func notModified(h *fasthttp.RequestHeader, etag []byte, mod time.Time) bool {
	if inm := h.Peek("If-None-Match"); len(inm) > 0 {
		return etagListHas(inm, etag)
	}
	if ims := h.Peek("If-Modified-Since"); len(ims) > 0 {
		t, err := time.Parse(http1Time, string(ims))
		return err == nil && !mod.After(t)
	}
	return false
}

// ifRangeHolds: a Range is honoured unless If-Range names another version.
func ifRangeHolds(h *fasthttp.RequestHeader, etag []byte, mod time.Time) bool {
	ir := h.Peek("If-Range")
	if len(ir) == 0 {
		return true
	}
	if ir[0] == '"' || bytes.HasPrefix(ir, []byte("W/")) {
		return bytes.Equal(ir, etag)
	}
	t, err := time.Parse(http1Time, string(ir))
	return err == nil && mod.Equal(t)
}

func etagListHas(list, etag []byte) bool {
	for _, item := range bytes.Split(list, []byte(",")) {
		item = bytes.TrimSpace(item)
		item = bytes.TrimPrefix(item, []byte("W/"))
		if bytes.Equal(item, []byte("*")) || bytes.Equal(item, etag) {
			return true
		}
	}
	return false
}

// parseRange reads one "bytes=a-b", "bytes=a-" or "bytes=-n" range; a
// list of several is answered whole (RFC 9110 allows it), by reporting
// the full range.
func parseRange(v []byte, size int64) (start, end int64, ok bool) {
	spec, found := bytes.CutPrefix(v, []byte("bytes="))
	if !found {
		return 0, size - 1, true
	}
	if bytes.IndexByte(spec, ',') >= 0 {
		return 0, size - 1, true
	}
	a, b, found := bytes.Cut(bytes.TrimSpace(spec), []byte("-"))
	if !found {
		return 0, 0, false
	}
	switch {
	case len(a) == 0:
		n, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false
		}
		return max(size-n, 0), size - 1, size > 0
	default:
		s, err := strconv.ParseInt(string(a), 10, 64)
		if err != nil || s < 0 || s >= size {
			return 0, 0, false
		}
		e := size - 1
		if len(b) > 0 {
			if e2, err := strconv.ParseInt(string(b), 10, 64); err == nil && e2 >= s {
				e = min(e2, size-1)
			} else {
				return 0, 0, false
			}
		}
		return s, e, true
	}
}

// precompressed opens name.br or name.gz when the client accepts that
// coding, the sibling is at least as new as the file, and the answer is
// the whole file (no range).
func precompressed(root *os.Root, fi fs.FileInfo, name string, ctx *fasthttp.RequestCtx) (*os.File, fs.FileInfo, string) {
	if len(ctx.Request.Header.Peek("Range")) > 0 {
		return nil, nil, ""
	}
	var ae acceptEncoding
	ae.reset()
	for k, v := range ctx.Request.Header.All() {
		if bytes.EqualFold(k, hAcceptEncoding) {
			ae.parse(v)
		}
	}
	if !ae.seen {
		return nil, nil, ""
	}
	// The client's preference decides between br and gzip, as for
	// compression on the fly; gzip is the fallback when no .br exists.
	order := []coding{ae.choose([]coding{codingBr, codingGzip})}
	if order[0] == codingBr && ae.choose([]coding{codingGzip}) == codingGzip {
		order = append(order, codingGzip)
	}
	for _, c := range order {
		ext := map[coding]string{codingBr: ".br", codingGzip: ".gz"}[c]
		if ext == "" {
			continue
		}
		sib, err := root.Open(name + ext)
		if err != nil {
			continue
		}
		sfi, err := sib.Stat()
		if err != nil || !sfi.Mode().IsRegular() || sfi.ModTime().Before(fi.ModTime()) {
			sib.Close()
			continue
		}
		return sib, sfi, string(codingTokens[c])
	}
	return nil, nil, ""
}
