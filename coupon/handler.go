package coupon

import (
	"bytes"
	"errors"
	"math"
	"slices"
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
	path := ctx.URI().PathOriginal()
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
	var err error
	s.hashes, err = Cover(s.hashes[:0], q.Lat, q.Lon, q.RadiusM, o.Precision)
	if errors.Is(err, ErrCoverTooLarge) {
		h.counts.BadRequest.Add(1)
		writeJSON(ctx, fasthttp.StatusBadRequest, errCoverTooLarge)
		return
	}
	s.q, s.now = q, o.Now().UnixNano()
	st, err := h.store.Cells(s.hashes, o.Precision, s)
	if err != nil {
		h.unavailable(ctx, o)
		return
	}
	h.count(st)
	s.out = s.render(s.out[:0])
	writeJSON(ctx, fasthttp.StatusOK, s.out)
	setCache(ctx, st)
}

func (h *Handler) release(s *search) {
	clear(s.cands) // drop references into cell bytes
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

// search is one nearby request's scratch space, pooled.
type search struct {
	q      NearbyQuery
	now    int64
	hashes []byte
	cands  []candidate
	out    []byte
}

type candidate struct {
	dist    float64
	id, raw []byte
}

// VisitCell keeps the entries of a cell that are valid now and within the
// radius.
func (s *search) VisitCell(entries []byte) {
	for {
		e, rest, ok := NextEntry(entries)
		if !ok {
			return
		}
		entries = rest
		if e.ValidFrom > s.now || s.now >= e.ValidUntil {
			continue
		}
		if d := DistanceM(s.q.Lat, s.q.Lon, e.Lat, e.Lon); d <= s.q.RadiusM {
			s.cands = append(s.cands, candidate{dist: d, id: e.ID, raw: e.Raw})
		}
	}
}

func byDistanceThenID(a, b candidate) int {
	switch {
	case a.dist < b.dist:
		return -1
	case a.dist > b.dist:
		return 1
	}
	return bytes.Compare(a.id, b.id)
}

// render writes {"count":N,"coupons":[...]} with the nearest Limit coupons,
// each its stored object with "distance_m" added.
func (s *search) render(dst []byte) []byte {
	slices.SortFunc(s.cands, byDistanceThenID)
	n := min(len(s.cands), s.q.Limit)
	dst = append(dst, `{"count":`...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, `,"coupons":[`...)
	for i, c := range s.cands[:n] {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendWithDistance(dst, c.raw, c.dist)
	}
	return append(dst, "]}"...)
}

// appendWithDistance appends the object raw with "distance_m" (metres, one
// decimal) as its last member.
func appendWithDistance(dst, raw []byte, dist float64) []byte {
	end := bytes.LastIndexByte(raw, '}')
	if end < 0 {
		return append(dst, raw...)
	}
	body := raw[:end]
	dst = append(dst, body...)
	if t := bytes.TrimRight(body, " \t\r\n"); len(t) > 0 && t[len(t)-1] != '{' {
		dst = append(dst, ',')
	}
	dst = append(dst, `"distance_m":`...)
	dst = strconv.AppendFloat(dst, math.Round(dist*10)/10, 'f', 1, 64)
	return append(dst, raw[end:]...)
}
