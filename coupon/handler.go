package coupon

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Options configure a Handler; Reconfigure swaps them whole.
type Options struct {
	// PathPrefix is where the API lives: {prefix}/nearby and {prefix}/{id}.
	PathPrefix string
	// Precision is the geohash precision of the store's cells.
	Precision int
	Limits    Limits
	// Fallback gets every request under the prefix that is not a coupon
	// read, and the reads the store cannot answer; nil means none.
	Fallback fasthttp.RequestHandler
	// Now is the clock for validity; nil means time.Now.
	Now func() time.Time
}

// Handler answers the coupon API from a Store. It is safe for concurrent
// use.
type Handler struct {
	opts    atomic.Pointer[Options]
	store   Store
	scratch sync.Pool
	counts  Counts
}

// Counts are the handler's answers by X-Cache result, for metrics.
type Counts struct {
	Hit, Miss, Stale, Unavailable, Fallback, BadRequest atomic.Uint64
}

// NewHandler serves the API of SPEC §6 from store.
func NewHandler(store Store, o Options) *Handler {
	h := &Handler{store: store}
	h.Reconfigure(o)
	h.scratch.New = func() any { return &search{} }
	return h
}

// Reconfigure swaps the options for new requests.
func (h *Handler) Reconfigure(o Options) {
	if o.Now == nil {
		o.Now = time.Now
	}
	h.opts.Store(&o)
}

// Counts returns the live counters.
func (h *Handler) Counts() *Counts { return &h.counts }

var (
	contentTypeJSON  = []byte("application/json")
	headerXCache     = []byte("X-Cache")
	errNotFound      = []byte(`{"error":"coupon not found"}`)
	errUnavailable   = []byte(`{"error":"coupon store unavailable"}`)
	errNoSuchPath    = []byte(`{"error":"not found"}`)
	errMethod        = []byte(`{"error":"method not allowed"}`)
	errCoverTooLarge = []byte(`{"error":"radius_m: too large at this latitude"}`)
	nearbySegment    = []byte("nearby")
	allowGetHead     = []byte("GET, HEAD")
	statusValues     = [...][]byte{Hit: []byte("HIT"), Miss: []byte("MISS"), Stale: []byte("STALE")}
)

// Serve is the fasthttp handler.
func (h *Handler) Serve(ctx *fasthttp.RequestCtx) {
	o := h.opts.Load()
	path := requestPath(ctx)
	rest, ok := bytes.CutPrefix(path, []byte(o.PathPrefix))
	var seg []byte
	if ok && len(rest) > 1 && rest[0] == '/' && bytes.IndexByte(rest[1:], '/') < 0 {
		seg = rest[1:]
	}
	read := ctx.IsGet() || ctx.IsHead()
	switch {
	case seg == nil || !read:
		h.other(ctx, o, seg != nil && (bytes.Equal(seg, nearbySegment) || ValidID(seg)))
	case bytes.Equal(seg, nearbySegment):
		h.nearby(ctx, o)
	default:
		h.byID(ctx, o, seg)
	}
}

// requestPath is the raw path of the request-target, parsed only as far as
// needed: the origin form is cut at '?', other forms go through fasthttp.
func requestPath(ctx *fasthttp.RequestCtx) []byte {
	uri := ctx.Request.Header.RequestURI()
	if len(uri) == 0 || uri[0] != '/' {
		return ctx.URI().PathOriginal()
	}
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		return uri[:i]
	}
	return uri
}

// other handles what is not a coupon read: the fallback's, or 404/405.
func (h *Handler) other(ctx *fasthttp.RequestCtx, o *Options, knownPath bool) {
	if o.Fallback != nil {
		h.counts.Fallback.Add(1)
		o.Fallback(ctx)
		return
	}
	if knownPath {
		ctx.Response.Header.SetBytesV("Allow", allowGetHead)
		writeJSON(ctx, fasthttp.StatusMethodNotAllowed, errMethod)
		return
	}
	writeJSON(ctx, fasthttp.StatusNotFound, errNoSuchPath)
}

func (h *Handler) byID(ctx *fasthttp.RequestCtx, o *Options, id []byte) {
	if !ValidID(id) {
		writeJSON(ctx, fasthttp.StatusNotFound, errNotFound)
		setCache(ctx, Hit)
		return
	}
	raw, st, err := h.store.Coupon(id)
	if err != nil {
		h.unavailable(ctx, o)
		return
	}
	h.count(st)
	if raw == nil {
		writeJSON(ctx, fasthttp.StatusNotFound, errNotFound)
	} else {
		writeJSON(ctx, fasthttp.StatusOK, raw)
	}
	setCache(ctx, st)
}

func (h *Handler) nearby(ctx *fasthttp.RequestCtx, o *Options) {
	q, perr := ParseNearby(ctx.QueryArgs(), o.Limits)
	if perr != nil {
		h.counts.BadRequest.Add(1)
		s := h.scratch.Get().(*search)
		s.out = appendError(s.out[:0], perr)
		writeJSON(ctx, fasthttp.StatusBadRequest, s.out)
		h.scratch.Put(s)
		return
	}
	s := h.scratch.Get().(*search)
	defer h.release(s)
	st, err := s.run(h.store, q, o.Precision, o.Now().UnixNano())
	if errors.Is(err, ErrCoverTooLarge) {
		h.counts.BadRequest.Add(1)
		writeJSON(ctx, fasthttp.StatusBadRequest, errCoverTooLarge)
		return
	}
	if err != nil {
		h.unavailable(ctx, o)
		return
	}
	var answer []byte
	s.out, answer = s.render(s.out)
	h.count(st)
	writeJSON(ctx, fasthttp.StatusOK, answer)
	setCache(ctx, st)
}

func (h *Handler) release(s *search) {
	clear(s.cands) // drop references to cell indexes
	s.cands = s.cands[:0]
	h.scratch.Put(s)
}

// unavailable answers what the store could not: the fallback, else 503.
func (h *Handler) unavailable(ctx *fasthttp.RequestCtx, o *Options) {
	h.counts.Unavailable.Add(1)
	if o.Fallback != nil {
		h.counts.Fallback.Add(1)
		o.Fallback(ctx)
		setCache(ctx, Miss)
		return
	}
	writeJSON(ctx, fasthttp.StatusServiceUnavailable, errUnavailable)
	setCache(ctx, Miss)
}

func (h *Handler) count(st Status) {
	switch st {
	case Hit:
		h.counts.Hit.Add(1)
	case Miss:
		h.counts.Miss.Add(1)
	case Stale:
		h.counts.Stale.Add(1)
	}
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.SetBody(body)
}

func setCache(ctx *fasthttp.RequestCtx, st Status) {
	ctx.Response.Header.SetBytesKV(headerXCache, statusValues[st])
}

func appendError(dst []byte, e *ParamError) []byte {
	dst = append(dst, `{"error":`...)
	dst = strconv.AppendQuote(dst, e.Error())
	return append(dst, '}')
}

// countRoom is kept free at the start of the buffer for `{"count":N`,
// which is known only once the members are written.
const countRoom = 32

// render writes {"count":N,"coupons":[...]}, each coupon its stored object
// with "distance_m" added. It returns the buffer to keep and the answer
// inside it.
func (s *search) render(buf []byte) ([]byte, []byte) {
	buf = append(buf[:0], make([]byte, countRoom)...)
	buf = append(buf, `,"coupons":[`...)
	top := s.selectTop()
	for n, c := range top {
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = c.ix.appendWithDistance(buf, c.i, s.answerDistance(&top[n]))
	}
	buf = append(buf, "]}"...)
	var head [countRoom]byte
	h := strconv.AppendInt(append(head[:0], `{"count":`...), int64(len(top)), 10)
	start := countRoom - len(h)
	copy(buf[start:], h)
	return buf, buf[start:]
}

// appendTenths writes d rounded to a tenth with one decimal: what
// strconv.AppendFloat(math.Round(d*10)/10, 'f', 1, 64) writes, in integer
// arithmetic (the float formatting was 3% of a nearby request). Distances
// are finite and far below 2^53 tenths.
func appendTenths(dst []byte, d float64) []byte {
	t := int64(math.Round(d * 10))
	if t < 0 {
		dst = append(dst, '-')
		t = -t
	}
	dst = strconv.AppendInt(dst, t/10, 10)
	return append(dst, '.', byte('0'+t%10))
}
