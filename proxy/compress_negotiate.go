package proxy

import (
	"bytes"
)

// coding is a content coding the compression step can produce, or
// identity (none).
type coding uint8

const (
	codingIdentity coding = iota
	codingGzip
	codingBr
	codingZstd
	numCodings
)

var codingTokens = [numCodings][]byte{
	codingIdentity: []byte("identity"),
	codingGzip:     []byte("gzip"),
	codingBr:       []byte("br"),
	codingZstd:     []byte("zstd"),
}

// parseCoding maps a [compression] algorithms entry to its coding.
func parseCoding(name string) (coding, bool) {
	switch name {
	case "gzip":
		return codingGzip, true
	case "br":
		return codingBr, true
	case "zstd":
		return codingZstd, true
	}
	return codingIdentity, false
}

// qNotNamed marks a coding the Accept-Encoding fields do not name.
const qNotNamed = -1

// acceptEncoding is what a request's Accept-Encoding fields allow
// (RFC 9110 §12.5.3): a q-value in thousandths per coding and for "*",
// qNotNamed where a coding is not named. The zero value is not ready:
// start with reset.
type acceptEncoding struct {
	q    [numCodings]int16
	star int16
	seen bool // some Accept-Encoding field was present
}

func (a *acceptEncoding) reset() {
	for i := range a.q {
		a.q[i] = qNotNamed
	}
	a.star = qNotNamed
	a.seen = false
}

// parse adds one Accept-Encoding field value. Names are case-insensitive,
// whitespace around elements and parameters is ignored, "x-gzip" is gzip,
// unknown codings are skipped. A q that does not parse refuses its coding
// (as nginx does); a coding named twice keeps its lowest q, so a refusal
// is never undone by a later element.
func (a *acceptEncoding) parse(v []byte) {
	a.seen = true
	for len(v) > 0 {
		var elem []byte
		elem, v, _ = bytes.Cut(v, comma)
		name, params, _ := bytes.Cut(elem, semicolon)
		name = trimOWS(name)
		if len(name) == 0 {
			continue
		}
		q := qParams(params)
		switch {
		case len(name) == 1 && name[0] == '*':
			a.star = lowerQ(a.star, q)
		case bytes.EqualFold(name, xGzip):
			a.q[codingGzip] = lowerQ(a.q[codingGzip], q)
		default:
			for c := coding(0); c < numCodings; c++ {
				if bytes.EqualFold(name, codingTokens[c]) {
					a.q[c] = lowerQ(a.q[c], q)
					break
				}
			}
		}
	}
}

var (
	semicolon = []byte(";")
	comma     = []byte(",")
	lineFeed  = []byte("\n")
	xGzip     = []byte("x-gzip")
)

func lowerQ(old, q int16) int16 {
	if old == qNotNamed || q < old {
		return q
	}
	return old
}

// qParams finds the q parameter among an element's parameters; 1000
// without one, 0 when it does not parse.
func qParams(params []byte) int16 {
	for len(params) > 0 {
		var p []byte
		p, params, _ = bytes.Cut(params, semicolon)
		k, val, ok := bytes.Cut(p, equals)
		k = trimOWS(k)
		if len(k) != 1 || k[0]|0x20 != 'q' {
			continue
		}
		if !ok {
			return 0
		}
		return parseQ(trimOWS(val))
	}
	return 1000
}

var equals = []byte("=")

// parseQ reads an RFC 9110 qvalue, "0" to "1" with at most three
// decimals, in thousandths; anything else is 0.
func parseQ(b []byte) int16 {
	if len(b) == 0 || len(b) > 5 || (b[0] != '0' && b[0] != '1') {
		return 0
	}
	q := int16(b[0]-'0') * 1000
	if len(b) == 1 {
		return q
	}
	if b[1] != '.' {
		return 0
	}
	scale := int16(100)
	for _, d := range b[2:] {
		if d < '0' || d > '9' {
			return 0
		}
		q += int16(d-'0') * scale
		scale /= 10
	}
	if q > 1000 {
		return 0
	}
	return q
}

// choose picks the coding to answer with: the highest q among order (the
// algorithms list), ties by that order; q=0 refuses; "*" stands for every
// coding not named. Identity is kept when the client names it with a
// higher q than any coding, or names no acceptable coding at all.
func (a *acceptEncoding) choose(order []coding) coding {
	best, bestQ := codingIdentity, int16(0)
	for _, c := range order {
		q := a.q[c]
		if q == qNotNamed {
			q = a.star
		}
		if q > bestQ {
			best, bestQ = c, q
		}
	}
	if best != codingIdentity && a.q[codingIdentity] > bestQ {
		return codingIdentity
	}
	return best
}

// trimOWS trims the optional whitespace (SP, HTAB) of RFC 9110 §5.6.3.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
