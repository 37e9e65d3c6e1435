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
	var err error
	s.hashes, err = Cover(s.hashes[:0], q.Lat, q.Lon, q.RadiusM, o.Precision)
	if errors.Is(err, ErrCoverTooLarge) {
		h.counts.BadRequest.Add(1)
		writeJSON(ctx, fasthttp.StatusBadRequest, errCoverTooLarge)
		return
	}
	s.reset(q, o.Now().UnixNano())
	st, err := h.store.Cells(s.hashes, o.Precision, s)
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

// search is one nearby request's scratch space, pooled.
type search struct {
	q   NearbyQuery
	box Box
	// The centre's latitude in radians, its half-angle sines and cosines,
	// and cos(latitude).
	φ, sinHalfφ, cosHalfφ, sinHalfλ, cosHalfλ, cosφ float64
	havMax                                          float64 // hav of the radius
	rimTol                                          float64 // havTolerance(havMax)
	now                                             int64
	hashes                                          []byte
	// cands holds every candidate within the radius; after selectTop its
	// first Limit are the nearest, in order.
	cands []candidate
	out   []byte
}

type candidate struct {
	hav float64 // orders as the distance does
	ix  *Index
	i   int
}

func (s *search) reset(q NearbyQuery, now int64) {
	s.q, s.now = q, now
	s.box = BoxAround(q.Lat, q.Lon, q.RadiusM)
	s.sinHalfφ, s.cosHalfφ = math.Sincos(q.Lat * degToRad / 2)
	s.sinHalfλ, s.cosHalfλ = math.Sincos(q.Lon * degToRad / 2)
	s.φ = q.Lat * degToRad
	s.cosφ = math.Cos(s.φ)
	r := math.Sin(q.RadiusM / EarthRadiusM / 2)
	s.havMax = r * r
	s.rimTol = havTolerance(s.havMax)
	s.cands = s.cands[:0]
}

// VisitCell keeps the coupons of a cell that are valid now and within the
// radius. Only the latitude band of the circle is scanned; the haversine
// is sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2), with each half-angle sine
// expanded from precomputed sines and cosines.
func (s *search) VisitCell(ix *Index) {
	lo, hi := ix.latBand(&s.box)
	sφ, cφ, sλ, cλ := ix.sinHalfLat[lo:hi], ix.cosHalfLat[lo:hi], ix.sinHalfLon[lo:hi], ix.cosHalfLon[lo:hi]
	cos, from, until := ix.cosLat[lo:hi], ix.from[lo:hi], ix.until[lo:hi]
	for k := range sφ {
		if from[k] > s.now || s.now >= until[k] {
			continue
		}
		a := sφ[k]*s.cosHalfφ - cφ[k]*s.sinHalfφ // sin((φ2-φ1)/2)
		b := sλ[k]*s.cosHalfλ - cλ[k]*s.sinHalfλ // sin((λ2-λ1)/2)
		h := a*a + s.cosφ*cos[k]*b*b
		if h > s.havMax+s.rimTol {
			continue
		}
		i := lo + k
		if h >= s.havMax-s.rimTol && s.distance(ix, i) > s.q.RadiusM {
			continue // on the rim: decided by the exact formula
		}
		s.cands = append(s.cands, candidate{hav: h, ix: ix, i: i})
	}
}

// distance is DistanceM from the centre to coupon i, bit for bit, with the
// cosines already at hand.
func (s *search) distance(ix *Index, i int) float64 {
	return havMeters(hav(s.φ, s.cosφ, ix.lat[i]*degToRad, ix.cosLat[i], ix.lon[i]-s.q.Lon))
}

// selectTop moves the Limit nearest candidates, in order, to the front:
// a quickselect around the Limit-th, then a sort of those alone.
func (s *search) selectTop() []candidate {
	c, k := s.cands, s.q.Limit
	if len(c) > k {
		lo, hi := 0, len(c)-1
		for lo < hi {
			p := s.partition(c, lo, hi)
			switch {
			case p == k:
				lo = hi
			case p < k:
				lo = p + 1
			default:
				hi = p - 1
			}
		}
		c = c[:k]
	}
	slices.SortFunc(c, s.compare)
	return c
}

// partition is Lomuto's around the middle element; it returns the
// pivot's final place.
func (s *search) partition(c []candidate, lo, hi int) int {
	mid := lo + (hi-lo)/2
	c[mid], c[hi] = c[hi], c[mid]
	p := lo
	for i := lo; i < hi; i++ {
		if s.compare(c[i], c[hi]) < 0 {
			c[i], c[p] = c[p], c[i]
			p++
		}
	}
	c[p], c[hi] = c[hi], c[p]
	return p
}

// havTolerance bounds how far the expanded haversine of VisitCell may be
// from the exact formula's: its half-angle sines come from a difference of
// products, exact to a few ulps absolutely, so the error grows as √h.
func havTolerance(h float64) float64 { return 1e-14 * (math.Sqrt(h) + h) }

// compare orders by distance, then id. Where two expanded haversines are
// closer than their tolerance, the exact distances decide, so ties are
// ties exactly as the API's formula makes them.
func (s *search) compare(a, b candidate) int {
	// havTolerance is at most 2e-14 (h <= 1): most pairs are decided
	// without computing it.
	if d := a.hav - b.hav; math.Abs(d) > 2e-14 || math.Abs(d) > havTolerance(max(a.hav, b.hav)) {
		if d < 0 {
			return -1
		}
		return 1
	}
	da, db := s.distance(a.ix, a.i), s.distance(b.ix, b.i)
	switch {
	case da < db:
		return -1
	case da > db:
		return 1
	}
	return bytes.Compare(a.ix.ID(a.i), b.ix.ID(b.i))
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
		buf = appendWithDistance(buf, c.ix.Raw(c.i), s.distance(c.ix, c.i))
	}
	buf = append(buf, "]}"...)
	var head [countRoom]byte
	h := strconv.AppendInt(append(head[:0], `{"count":`...), int64(len(top)), 10)
	start := countRoom - len(h)
	copy(buf[start:], h)
	return buf, buf[start:]
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
	if last := lastNonSpace(body); last >= 0 && body[last] != '{' {
		dst = append(dst, ',')
	}
	dst = append(dst, `"distance_m":`...)
	return append(appendTenths(dst, dist), raw[end:]...)
}

// lastNonSpace is the index of body's last byte that is not JSON
// whitespace, or -1. (bytes.TrimRight with a cutset was 2% of a nearby
// request.)
func lastNonSpace(body []byte) int {
	i := len(body) - 1
	for i >= 0 && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n') {
		i--
	}
	return i
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
