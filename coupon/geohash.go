package coupon

import (
	"errors"
	"math"
)

const base32 = "0123456789bcdefghjkmnpqrstuvwxyz"

// MaxCoverCells bounds the cells one search may read; near the poles the
// cells shrink to slivers and a wide circle needs many of them.
const MaxCoverCells = 1 << 18

// ErrCoverTooLarge is returned by Cover past MaxCoverCells.
var ErrCoverTooLarge = errors.New("search area needs too many geohash cells")

// cellBits splits a precision's 5p bits between longitude (the extra one
// when odd) and latitude.
func cellBits(precision int) (lonBits, latBits uint) {
	b := uint(5 * precision)
	return (b + 1) / 2, b / 2
}

func lonIndex(lon float64, bits uint) uint64 {
	return quantize((lon+180)/360, bits)
}

func latIndex(lat float64, bits uint) uint64 {
	return quantize((lat+90)/180, bits)
}

// quantize maps f in [0,1] to a cell index of bits bits; 1 maps to the last
// cell so that 90° and 180° belong to the grid.
func quantize(f float64, bits uint) uint64 {
	n := uint64(1) << bits
	if f <= 0 {
		return 0
	}
	i := uint64(math.Floor(f * float64(n)))
	if i >= n {
		i = n - 1
	}
	return i
}

// appendHash appends the geohash of cell (lonIdx, latIdx): bits interleaved
// from longitude first, five to a character.
func appendHash(dst []byte, lonIdx, latIdx uint64, precision int) []byte {
	lonBits, latBits := cellBits(precision)
	var ch, n byte
	lb, ab := lonBits, latBits
	for i := 0; i < 5*precision; i++ {
		var bit uint64
		if i%2 == 0 {
			lb--
			bit = (lonIdx >> lb) & 1
		} else {
			ab--
			bit = (latIdx >> ab) & 1
		}
		ch = ch<<1 | byte(bit)
		n++
		if n == 5 {
			dst = append(dst, base32[ch])
			ch, n = 0, 0
		}
	}
	return dst
}

// Geohash returns the geohash of a point at precision characters.
func Geohash(lat, lon float64, precision int) string {
	lonBits, latBits := cellBits(precision)
	return string(appendHash(nil, lonIndex(lon, lonBits), latIndex(lat, latBits), precision))
}

// edgeMargin widens the search box by about a centimetre, so a point on a
// cell edge is found whichever side a writer's geohash put it.
const edgeMargin = 1e-7

// Box bounds the points within a radius of a centre: a latitude band and,
// unless the circle holds a pole or spans every longitude, a longitude
// half-width around the centre. It errs on the wide side by edgeMargin.
type Box struct {
	LatMin, LatMax float64
	Lon, DLon      float64
	FullLon        bool
}

// BoxAround returns the bounding box of the circle of radiusM around
// (lat, lon) on the sphere.
func BoxAround(lat, lon, radiusM float64) Box {
	δ := radiusM / EarthRadiusM // angular radius, radians
	δDeg := δ / degToRad
	b := Box{LatMin: lat - δDeg - edgeMargin, LatMax: lat + δDeg + edgeMargin, Lon: lon}
	if b.LatMax >= 90 {
		b.LatMax, b.FullLon = 90, true
	}
	if b.LatMin <= -90 {
		b.LatMin, b.FullLon = -90, true
	}
	if !b.FullLon {
		// The widest longitude of a spherical cap: asin(sin δ / cos φ).
		s := math.Sin(δ) / math.Cos(lat*degToRad)
		if s >= 1 {
			b.FullLon = true
		} else {
			b.DLon = math.Asin(s)/degToRad + edgeMargin
			if b.DLon >= 180 {
				b.FullLon = true
			}
		}
	}
	return b
}

// Contains reports whether (lat, lon) is inside the box.
func (b *Box) Contains(lat, lon float64) bool {
	return lat >= b.LatMin && lat <= b.LatMax && b.containsLon(lon)
}

func (b *Box) containsLon(lon float64) bool {
	if b.FullLon {
		return true
	}
	d := lon - b.Lon
	if d > 180 {
		d -= 360
	} else if d < -180 {
		d += 360
	}
	return d <= b.DLon && d >= -b.DLon
}

// centreFirst moves the hash of the cell holding (lat, lon) to the front
// of hashes, where Cover put it somewhere in its rows: a search visiting
// that cell first holds near coupons early and drops most of the others'
// coupons after one comparison.
func centreFirst(hashes []byte, lat, lon float64, precision int) {
	lonBits, latBits := cellBits(precision)
	var buf [16]byte
	centre := appendHash(buf[:0], lonIndex(lon, lonBits), latIndex(lat, latBits), precision)
	for i := precision; i+precision <= len(hashes); i += precision {
		if string(hashes[i:i+precision]) == string(centre) {
			var tmp [16]byte
			copy(tmp[:], hashes[:precision])
			copy(hashes[:precision], centre)
			copy(hashes[i:i+precision], tmp[:precision])
			return
		}
	}
}

// Cover appends the geohashes of every cell at precision that may hold a
// point within radiusM of (lat, lon): the cells meeting the circle's
// bounding box, split across the antimeridian and widened to every
// longitude when the circle holds a pole. Each hash is precision bytes.
func Cover(dst []byte, lat, lon, radiusM float64, precision int) ([]byte, error) {
	lonBits, latBits := cellBits(precision)
	b := BoxAround(lat, lon, radiusM)
	nLon := uint64(1) << lonBits
	var ranges [2][2]uint64 // inclusive lon index ranges
	nr := 1
	fullLon := b.FullLon
	if !fullLon {
		lo, hi := lon-b.DLon, lon+b.DLon
		switch {
		case lo < -180:
			ranges[0] = [2]uint64{lonIndex(lo+360, lonBits), nLon - 1}
			ranges[1] = [2]uint64{0, lonIndex(hi, lonBits)}
			nr = 2
		case hi > 180:
			ranges[0] = [2]uint64{lonIndex(lo, lonBits), nLon - 1}
			ranges[1] = [2]uint64{0, lonIndex(hi-360, lonBits)}
			nr = 2
		default:
			ranges[0] = [2]uint64{lonIndex(lo, lonBits), lonIndex(hi, lonBits)}
		}
		if nr == 2 && ranges[1][1] >= ranges[0][0] { // the two ends meet
			fullLon, nr = true, 1
		}
	}
	if fullLon {
		ranges[0], nr = [2]uint64{0, nLon - 1}, 1
	}
	r0, r1 := latIndex(b.LatMin, latBits), latIndex(b.LatMax, latBits)
	cells := uint64(0)
	for i := 0; i < nr; i++ {
		cells += ranges[i][1] - ranges[i][0] + 1
	}
	if cells*(r1-r0+1) > MaxCoverCells {
		return dst, ErrCoverTooLarge
	}
	for row := r0; row <= r1; row++ {
		for i := 0; i < nr; i++ {
			for col := ranges[i][0]; col <= ranges[i][1]; col++ {
				dst = appendHash(dst, col, row, precision)
			}
		}
	}
	return dst, nil
}
