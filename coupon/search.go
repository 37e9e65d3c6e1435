package coupon

import (
	"bytes"
	"math"
	"slices"
	"sort"
)

// search is one nearby request's scratch space, pooled.
type search struct {
	q NearbyQuery
	// The centre's latitude in radians, its half-angle sines and cosines,
	// and cos(latitude).
	φ, sinHalfφ, cosHalfφ, sinHalfλ, cosHalfλ, cosφ float64
	havMax                                          float64 // hav of the radius
	rimTol                                          float64 // havTolerance(havMax)
	// cut is the hav above which a coupon cannot be an answer: the radius
	// (with the rim's tolerance), then, once Limit candidates are held,
	// just beyond the farthest of them.
	cut    float64
	now    int64
	hashes []byte
	// scanned counts the coupons VisitCell read, for the benchmarks'
	// profile of a query.
	scanned int
	// cands is a max-heap under compare of the Limit nearest candidates
	// seen so far: cands[0] is the farthest of them.
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
	s.sinHalfφ, s.cosHalfφ = math.Sincos(q.Lat * degToRad / 2)
	s.sinHalfλ, s.cosHalfλ = math.Sincos(q.Lon * degToRad / 2)
	s.φ = q.Lat * degToRad
	s.cosφ = math.Cos(s.φ)
	r := math.Sin(q.RadiusM / EarthRadiusM / 2)
	s.havMax = r * r
	s.rimTol = havTolerance(s.havMax)
	s.cut = s.havMax + s.rimTol
	s.cands = s.cands[:0]
	s.scanned = 0
}

// run keeps in s the nearest coupons of q that store's cells hold: the
// circle's cover (ErrCoverTooLarge past MaxCoverCells), the centre's cell
// visited first so that the cut closes in early.
func (s *search) run(store Store, q NearbyQuery, precision int, now int64) (Status, error) {
	var err error
	if s.hashes, err = Cover(s.hashes[:0], q.Lat, q.Lon, q.RadiusM, precision); err != nil {
		return Miss, err
	}
	centreFirst(s.hashes, q.Lat, q.Lon, precision)
	s.reset(q, now)
	return store.Cells(s.hashes, precision, s)
}

// heapSlack is how far beyond the farthest held candidate a hav must be
// for compare to decide against it from the hav alone: compare trusts hav
// differences above 2e-14, and the slack doubles that so that the
// rounding of the addition cannot matter.
const heapSlack = 4e-14

// VisitCell keeps the Limit nearest coupons of the cell that are valid now
// and within the radius, together with those of the cells visited before.
// Only the latitude band of the circle is scanned, outwards from the
// centre's latitude, so that near coupons come first; the haversine is
// sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2), with each half-angle sine
// expanded from precomputed sines and cosines. Once Limit candidates are
// held, a coupon farther than all of them is dropped after one comparison:
// most of a dense cell never reaches the heap. (In latitude order instead,
// a band scanned towards the centre improves on the heap at every step.)
// Outwards, sin²(Δφ/2) only grows and bounds the haversine from below, so
// each direction stops at the first coupon whose latitude alone puts it
// past the cut: once the heap is full, a dense cell is read only within
// the nearest candidates' latitudes, not across the whole circle.
func (s *search) VisitCell(ix *Index) {
	// No band of latitudes is looked up first: the scan's stop is the
	// band's edge as well, before the heap is full (the cut is then the
	// radius), and nearer after.
	lo, hi := 0, ix.Len()
	mid := sort.SearchFloat64s(ix.lat, s.q.Lat)
	sφ, cφ, sλ, cλ := ix.sinHalfLat[:hi], ix.cosHalfLat[:hi], ix.sinHalfLon[:hi], ix.cosHalfLon[:hi]
	cos, from, until := ix.cosLat[:hi], ix.from[:hi], ix.until[:hi]
	cosφ, cosHalfφ, sinHalfφ, cosHalfλ, sinHalfλ := s.cosφ, s.cosHalfφ, s.sinHalfφ, s.cosHalfλ, s.sinHalfλ
	cut := s.cut
	i := mid
	for ; i < hi; i++ {
		a := sφ[i]*cosHalfφ - cφ[i]*sinHalfφ // sin((φ2-φ1)/2)
		b := sλ[i]*cosHalfλ - cλ[i]*sinHalfλ // sin((λ2-λ1)/2)
		h := a*a + cosφ*cos[i]*b*b
		if h > cut || from[i] > s.now || s.now >= until[i] {
			if a*a > cut+latSlack {
				break
			}
			continue
		}
		if s.consider(ix, i, h) {
			cut = s.cut
		}
	}
	s.scanned += i - mid
	i = mid - 1
	for ; i >= lo; i-- {
		a := sφ[i]*cosHalfφ - cφ[i]*sinHalfφ
		b := sλ[i]*cosHalfλ - cλ[i]*sinHalfλ
		h := a*a + cosφ*cos[i]*b*b
		if h > cut || from[i] > s.now || s.now >= until[i] {
			if a*a > cut+latSlack {
				break
			}
			continue
		}
		if s.consider(ix, i, h) {
			cut = s.cut
		}
	}
	s.scanned += mid - 1 - i
}

// latSlack is how far sin²(Δφ/2) must be past the cut before a scan stops
// on it. Latitudes are sorted, but each sine is rounded on its own, so a
// farther coupon's may come out a few ulps (below 1e-15) smaller; the
// slack, ten times that, keeps the stop from passing over anything the
// cut would have let through.
const latSlack = 1e-14

// consider offers coupon i, valid and with hav h under the cut, unless the
// exact formula puts it outside the circle; it reports whether the cut
// moved.
func (s *search) consider(ix *Index, i int, h float64) bool {
	if h >= s.havMax-s.rimTol && s.distance(ix, i) > s.q.RadiusM {
		return false // on the rim: decided by the exact formula
	}
	return s.offer(candidate{hav: h, ix: ix, i: i})
}

// offer puts c among the held candidates if it is nearer than the
// farthest of them or there is room; it reports whether the cut moved.
func (s *search) offer(c candidate) bool {
	k := s.q.Limit
	if len(s.cands) < k {
		s.cands = append(s.cands, c)
		s.up(len(s.cands) - 1)
	} else if s.order(&c, &s.cands[0]) < 0 {
		s.cands[0] = c
		s.down(0)
	} else {
		return false
	}
	if len(s.cands) < k {
		return false
	}
	s.cut = min(s.havMax+s.rimTol, s.cands[0].hav+heapSlack)
	return true
}

// order is compare on pointers, its common case first: haversines apart
// by more than any tolerance.
func (s *search) order(a, b *candidate) int {
	if d := a.hav - b.hav; d > 2e-14 {
		return 1
	} else if d < -2e-14 {
		return -1
	}
	return s.closeOrder(a, b)
}

// up and down keep cands a max-heap under compare.
func (s *search) up(j int) {
	c := s.cands
	for j > 0 {
		p := (j - 1) / 2
		if s.order(&c[j], &c[p]) <= 0 {
			return
		}
		c[j], c[p] = c[p], c[j]
		j = p
	}
}

func (s *search) down(j int) {
	c := s.cands
	for {
		l := 2*j + 1
		if l >= len(c) {
			return
		}
		m := l
		if r := l + 1; r < len(c) && s.order(&c[r], &c[l]) > 0 {
			m = r
		}
		if s.order(&c[m], &c[j]) <= 0 {
			return
		}
		c[j], c[m] = c[m], c[j]
		j = m
	}
}

// distance is DistanceM from the centre to coupon i, bit for bit, with the
// cosines already at hand.
func (s *search) distance(ix *Index, i int) float64 {
	return havMeters(hav(s.φ, s.cosφ, ix.lat[i]*degToRad, ix.cosLat[i], ix.lon[i]-s.q.Lon))
}

// answerDistance is a held candidate's distance as good as DistanceM's
// for an answer, which rounds it to a tenth of a metre: taken from the
// expanded haversine, which is within havTolerance of the exact formula's,
// that is well under a micrometre at the distances where asinSmall holds.
// Only a distance within 1e-5 m of a half tenth could round the other
// way; there, and beyond asinSmall's range, the exact formula is used.
// (Its two sines and an arcsine for every coupon answered were a sixth of
// a mixed nearby search.)
func (s *search) answerDistance(c *candidate) float64 {
	x := math.Sqrt(c.hav)
	if x > asinSmallMax {
		return s.distance(c.ix, c.i)
	}
	d := 2 * EarthRadiusM * asinSmall(x)
	if t := d * 10; math.Abs(t-math.Floor(t)-0.5) < 1e-4 {
		return s.distance(c.ix, c.i)
	}
	return d
}

// asinSmallMax is where asinSmall's series is cut off: its first omitted
// term, 35x⁹/1152, is below 1e-17 of x there (distances to about 127 km).
const asinSmallMax = 0.01

// asinSmall is arcsin x for 0 <= x <= asinSmallMax, from its Taylor series.
func asinSmall(x float64) float64 {
	x2 := x * x
	return x * (1 + x2*(1.0/6+x2*(3.0/40+x2*(5.0/112))))
}

// selectTop returns the held candidates, nearest first.
func (s *search) selectTop() []candidate {
	slices.SortFunc(s.cands, s.compare)
	return s.cands
}

// havTolerance bounds how far the expanded haversine of VisitCell may be
// from the exact formula's: its half-angle sines come from a difference of
// products, exact to a few ulps absolutely, so the error grows as √h.
func havTolerance(h float64) float64 { return 1e-14 * (math.Sqrt(h) + h) }

// compare orders by distance, then id. Where two expanded haversines are
// closer than their tolerance, the exact distances decide, so ties are
// ties exactly as the API's formula makes them.
func (s *search) compare(a, b candidate) int { return s.order(&a, &b) }

// closeOrder is compare for haversines within 2e-14 of each other, the
// most havTolerance can be (h <= 1).
func (s *search) closeOrder(a, b *candidate) int {
	if d := a.hav - b.hav; math.Abs(d) > havTolerance(max(a.hav, b.hav)) {
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
