package coupon

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"sort"
)

// Index is the searchable form of one geohash cell, precomputed once when
// the cell is read: its coupons sorted by latitude, in columns (latitude,
// longitude, cos(latitude), validity) that a search scans without decoding
// anything, and their stored JSON. An Index never changes after it is
// built, so it is shared by pointer between requests and caches.
type Index struct {
	lat, lon, cosLat []float64
	// Half-angle sines and cosines make the haversine of a search a few
	// multiplications, with no trigonometry per coupon.
	sinHalfLat, cosHalfLat, sinHalfLon, cosHalfLon []float64
	from, until                                    []int64
	// data holds each coupon's id then its JSON; off[i] is where coupon i
	// starts, off[len] the end.
	data  []byte
	off   []uint32
	idLen []uint8
	// brace is where coupon i's JSON closes, its last '}' in Raw(i), with
	// hasMembers set when a member precedes it: an answer inserts
	// "distance_m" there without reading the coupon's bytes twice (found
	// at answer time, the brace was a cache miss of its own per coupon).
	brace  []uint32
	nbytes int
}

const (
	hasMembers = 1 << 31
	noBrace    = math.MaxUint32 // not an object: answered as stored
)

// NewIndex builds the index of a cell's coupons.
func NewIndex(coupons []Coupon) *Index {
	order := make([]int, len(coupons))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool {
		ca, cb := &coupons[order[a]], &coupons[order[b]]
		if ca.Lat != cb.Lat {
			return ca.Lat < cb.Lat
		}
		return ca.ID < cb.ID
	})
	n := len(coupons)
	ix := &Index{
		lat: make([]float64, n), lon: make([]float64, n), cosLat: make([]float64, n),
		sinHalfLat: make([]float64, n), cosHalfLat: make([]float64, n),
		sinHalfLon: make([]float64, n), cosHalfLon: make([]float64, n),
		from: make([]int64, n), until: make([]int64, n),
		off: make([]uint32, n+1), idLen: make([]uint8, n), brace: make([]uint32, n),
	}
	size := 0
	for _, c := range coupons {
		size += len(c.ID) + len(c.Raw)
	}
	ix.data = make([]byte, 0, size)
	for k, i := range order {
		c := &coupons[i]
		ix.lat[k], ix.lon[k], ix.cosLat[k] = c.Lat, c.Lon, math.Cos(c.Lat*degToRad)
		ix.sinHalfLat[k], ix.cosHalfLat[k] = math.Sincos(c.Lat * degToRad / 2)
		ix.sinHalfLon[k], ix.cosHalfLon[k] = math.Sincos(c.Lon * degToRad / 2)
		ix.from[k], ix.until[k] = c.ValidFrom, c.ValidUntil
		ix.off[k] = uint32(len(ix.data))
		ix.idLen[k] = uint8(len(c.ID)) // ids are at most MaxIDLen (128) bytes
		ix.data = append(append(ix.data, c.ID...), c.Raw...)
		ix.brace[k] = braceOf(c.Raw)
	}
	ix.off[n] = uint32(len(ix.data))
	ix.nbytes = len(ix.data) + n*(8*9+4+1+4)
	return ix
}

// Len is the number of coupons in the cell.
func (ix *Index) Len() int { return len(ix.lat) }

// Bytes is about how much memory the index holds.
func (ix *Index) Bytes() int { return ix.nbytes }

// ID returns coupon i's id.
func (ix *Index) ID(i int) []byte { return ix.data[ix.off[i] : ix.off[i]+uint32(ix.idLen[i])] }

// Raw returns coupon i's stored JSON.
func (ix *Index) Raw(i int) []byte { return ix.data[ix.off[i]+uint32(ix.idLen[i]) : ix.off[i+1]] }

// Coupon returns coupon i's fields (Raw shares the index's memory).
func (ix *Index) Coupon(i int) Coupon {
	return Coupon{ID: string(ix.ID(i)), Lat: ix.lat[i], Lon: ix.lon[i], ValidFrom: ix.from[i], ValidUntil: ix.until[i], Raw: ix.Raw(i)}
}

func braceOf(raw []byte) uint32 {
	end := bytes.LastIndexByte(raw, '}')
	if end < 0 {
		return noBrace
	}
	b := uint32(end)
	if last := lastNonSpace(raw[:end]); last >= 0 && raw[last] != '{' {
		b |= hasMembers
	}
	return b
}

// lastNonSpace is the index of body's last byte that is not JSON
// whitespace, or -1.
func lastNonSpace(body []byte) int {
	i := len(body) - 1
	for i >= 0 && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n') {
		i--
	}
	return i
}

// appendWithDistance appends coupon i's JSON with "distance_m" (metres,
// one decimal) as its last member.
func (ix *Index) appendWithDistance(dst []byte, i int, dist float64) []byte {
	raw, b := ix.Raw(i), ix.brace[i]
	if b == noBrace {
		return append(dst, raw...)
	}
	end := int(b &^ hasMembers)
	dst = append(dst, raw[:end]...)
	if b&hasMembers != 0 {
		dst = append(dst, ',')
	}
	dst = append(dst, `"distance_m":`...)
	return append(appendTenths(dst, dist), raw[end:]...)
}

// The serialized form, for byte caches: a count, then the coupons as
//
//	lat f64 | lon f64 | valid_from i64 | valid_until i64 | id_len u8 | raw_len u32 | id | raw
//
// in index order (cos(latitude) is recomputed when decoded).
const recordHeader = 8 + 8 + 8 + 8 + 1 + 4

// AppendBinary appends the serialized index.
func (ix *Index) AppendBinary(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(ix.Len()))
	for i := 0; i < ix.Len(); i++ {
		raw := ix.Raw(i)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(ix.lat[i]))
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(ix.lon[i]))
		dst = binary.LittleEndian.AppendUint64(dst, uint64(ix.from[i]))
		dst = binary.LittleEndian.AppendUint64(dst, uint64(ix.until[i]))
		dst = append(dst, ix.idLen[i])
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(raw)))
		dst = append(append(dst, ix.ID(i)...), raw...)
	}
	return dst
}

var errCorruptIndex = errors.New("corrupt cell index")

// DecodeIndex rebuilds an index from AppendBinary's bytes; it keeps no
// reference to b.
func DecodeIndex(b []byte) (*Index, error) {
	if len(b) < 4 {
		return nil, errCorruptIndex
	}
	n := int(binary.LittleEndian.Uint32(b))
	b = b[4:]
	if n > len(b)/recordHeader {
		return nil, errCorruptIndex
	}
	coupons := make([]Coupon, 0, n)
	for i := 0; i < n; i++ {
		if len(b) < recordHeader {
			return nil, errCorruptIndex
		}
		c := Coupon{
			Lat:        math.Float64frombits(binary.LittleEndian.Uint64(b[0:])),
			Lon:        math.Float64frombits(binary.LittleEndian.Uint64(b[8:])),
			ValidFrom:  int64(binary.LittleEndian.Uint64(b[16:])),
			ValidUntil: int64(binary.LittleEndian.Uint64(b[24:])),
		}
		idLen, rawLen := int(b[32]), int(binary.LittleEndian.Uint32(b[33:]))
		b = b[recordHeader:]
		if len(b) < idLen+rawLen {
			return nil, errCorruptIndex
		}
		c.ID, c.Raw = string(b[:idLen]), b[idLen:idLen+rawLen]
		b = b[idLen+rawLen:]
		coupons = append(coupons, c)
	}
	return NewIndex(coupons), nil // copies the bytes it keeps
}
