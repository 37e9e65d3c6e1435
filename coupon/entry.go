package coupon

import (
	"encoding/binary"
	"math"
)

// A cell's coupons are kept ready to serve as one flat byte string of
// entries, so a cached cell is read in place without decoding JSON:
//
//	lat f64 | lon f64 | valid_from i64 | valid_until i64 | id_len u16 | raw_len u32 | id | raw
const entryHeader = 8 + 8 + 8 + 8 + 2 + 4

// AppendEntry appends c in entry form.
func AppendEntry(dst []byte, c *Coupon) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.Lat))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(c.Lon))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(c.ValidFrom))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(c.ValidUntil))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(c.ID)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(c.Raw)))
	dst = append(dst, c.ID...)
	return append(dst, c.Raw...)
}

// Entry is a view of one entry inside a cell's bytes; it is valid while
// those bytes are.
type Entry struct {
	Lat, Lon              float64
	ValidFrom, ValidUntil int64
	ID, Raw               []byte
}

// NextEntry decodes the entry at the start of b and returns the rest;
// ok is false at the end or on a malformed tail.
func NextEntry(b []byte) (e Entry, rest []byte, ok bool) {
	if len(b) < entryHeader {
		return Entry{}, nil, false
	}
	e.Lat = math.Float64frombits(binary.LittleEndian.Uint64(b[0:]))
	e.Lon = math.Float64frombits(binary.LittleEndian.Uint64(b[8:]))
	e.ValidFrom = int64(binary.LittleEndian.Uint64(b[16:]))
	e.ValidUntil = int64(binary.LittleEndian.Uint64(b[24:]))
	idLen := int(binary.LittleEndian.Uint16(b[32:]))
	rawLen := int(binary.LittleEndian.Uint32(b[34:]))
	b = b[entryHeader:]
	if len(b) < idLen+rawLen {
		return Entry{}, nil, false
	}
	e.ID, e.Raw = b[:idLen], b[idLen:idLen+rawLen]
	return e, b[idLen+rawLen:], true
}
