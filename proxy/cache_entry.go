package proxy

import (
	"encoding/binary"
	"time"

	"github.com/valyala/fasthttp"
)

// A stored answer is one byte string (respcache keeps bytes):
//
//	'R' storedAt initialAge lifetime swr sie (int64 ns each) flags status
//	nfields {klen k vlen v}… bodylen body
//
// A key whose answers vary holds instead 'V' nonce names ("\n"-joined,
// lower case); each variant is stored under key 0x00 nonce values. A new
// 'V' record (new nonce) orphans every older variant, so a purge of the
// key reaches them all.
const (
	entryResponse = 'R'
	entryVary     = 'V'
	entryHead     = 1 + 5*8 + 1 + 2 + 2

	flagMustRevalidate = 1
)

// entry is a decoded view of an 'R' record; its slices point into it.
type entry struct {
	raw                  []byte
	storedAt             int64
	initialAge, lifetime time.Duration
	swr, sie             time.Duration
	mustRevalidate       bool
	status               int
	fields               []byte // the encoded header fields
	nfields              int
	body                 []byte
}

func decodeEntry(b []byte, e *entry) bool {
	if len(b) < entryHead || b[0] != entryResponse {
		return false
	}
	e.raw = b
	le := binary.LittleEndian
	e.storedAt = int64(le.Uint64(b[1:]))
	e.initialAge = time.Duration(le.Uint64(b[9:]))
	e.lifetime = time.Duration(le.Uint64(b[17:]))
	e.swr = time.Duration(le.Uint64(b[25:]))
	e.sie = time.Duration(le.Uint64(b[33:]))
	e.mustRevalidate = b[41]&flagMustRevalidate != 0
	e.status = int(le.Uint16(b[42:]))
	e.nfields = int(le.Uint16(b[44:]))
	rest := b[entryHead:]
	start := rest
	for i := 0; i < e.nfields; i++ {
		for j := 0; j < 2; j++ {
			if len(rest) < 2 {
				return false
			}
			n := int(le.Uint16(rest))
			if len(rest) < 2+n {
				return false
			}
			rest = rest[2+n:]
		}
	}
	e.fields = start[:len(start)-len(rest)]
	if len(rest) < 4 {
		return false
	}
	n := int(le.Uint32(rest))
	if len(rest) != 4+n {
		return false
	}
	e.body = rest[4:]
	return true
}

// field is the first stored value of name.
func (e *entry) field(name string) []byte {
	le := binary.LittleEndian
	b := e.fields
	for len(b) > 0 {
		n := int(le.Uint16(b))
		k := b[2 : 2+n]
		b = b[2+n:]
		n = int(le.Uint16(b))
		v := b[2 : 2+n]
		b = b[2+n:]
		if eqFold(k, name) {
			return v
		}
	}
	return nil
}

// age is the entry's current age (RFC 9111 §4.2.3).
func (e *entry) age(now time.Time) time.Duration {
	return e.initialAge + max(time.Duration(now.UnixNano()-e.storedAt), 0)
}

// entryMeta is what encodeHead writes before the fields.
type entryMeta struct {
	storedAt             time.Time
	initialAge, lifetime time.Duration
	swr, sie             time.Duration
	mustRevalidate       bool
	status               int
}

// notStored are fields a stored answer never keeps: recomputed (Age,
// X-Cache), framing (Content-Length), or per client (Set-Cookie never
// reaches here).
func notStored(k []byte) bool {
	return eqFold(k, "Age") || eqFold(k, "X-Cache") || eqFold(k, "Content-Length") ||
		eqFold(k, "Transfer-Encoding") || eqFold(k, "Set-Cookie")
}

// encodeHead appends an 'R' record's head and the fields of h; the body
// length and body follow with appendBody.
func encodeHead(dst []byte, m entryMeta, fields func(func(k, v []byte))) []byte {
	le := binary.LittleEndian
	dst = append(dst, entryResponse)
	dst = le.AppendUint64(dst, uint64(m.storedAt.UnixNano()))
	dst = le.AppendUint64(dst, uint64(m.initialAge))
	dst = le.AppendUint64(dst, uint64(m.lifetime))
	dst = le.AppendUint64(dst, uint64(m.swr))
	dst = le.AppendUint64(dst, uint64(m.sie))
	var flags byte
	if m.mustRevalidate {
		flags |= flagMustRevalidate
	}
	dst = append(dst, flags)
	dst = le.AppendUint16(dst, uint16(m.status))
	at := len(dst)
	dst = le.AppendUint16(dst, 0)
	n := 0
	fields(func(k, v []byte) {
		if notStored(k) || len(k) > 0xffff || len(v) > 0xffff {
			return
		}
		dst = le.AppendUint16(dst, uint16(len(k)))
		dst = append(dst, k...)
		dst = le.AppendUint16(dst, uint16(len(v)))
		dst = append(dst, v...)
		n++
	})
	le.PutUint16(dst[at:], uint16(n))
	return dst
}

func appendBody(dst, body []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...)
}

func responseFields(h *fasthttp.ResponseHeader) func(func(k, v []byte)) {
	return func(f func(k, v []byte)) {
		for k, v := range h.All() {
			f(k, v)
		}
	}
}
