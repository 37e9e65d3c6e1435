package proxy

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// FuzzAcceptEncoding checks the Accept-Encoding parser against a plain,
// allocating reading of RFC 9110 §12.5.3 written apart from it: for any
// fields (split at '\n') and any algorithms order, both pick the same
// coding, and the pick is never a refused or unconfigured coding.
func FuzzAcceptEncoding(f *testing.F) {
	for _, s := range []string{
		"gzip, deflate, br, zstd",
		"gzip, deflate, br",
		"br;q=1.0, gzip;q=0.8, *;q=0.1",
		"zstd;q=0, br;q=0.000, gzip;q=0.001",
		"*;q=0, identity",
		" GZip ;\tQ=0.9 , BR ; q=0.3",
		"gzip;level=1;q=0.4, br;foo=bar;q=0.2",
		"x-gzip, compress;q=0.5",
		"gzip;q=1.5, br;q=abc, zstd;q=",
		"br;q=0\nbr, gzip;q=0.1",
		"identity;q=1, gzip;q=0.999",
		",,;;==q,",
		"",
	} {
		f.Add(s, uint8(0b00_01_10_11))
	}
	f.Fuzz(func(t *testing.T, header string, orderBits uint8) {
		order := orderFromBits(orderBits)
		fields := strings.Split(header, "\n")
		var a acceptEncoding
		a.reset()
		for _, fv := range fields {
			a.parse([]byte(fv))
		}
		got := a.choose(order)
		want := referenceChoose(fields, order)
		if got != want {
			t.Fatalf("%q with order %v: parser chose %s, reference %s", header, order, codingTokens[got], codingTokens[want])
		}
		if got == codingIdentity {
			return
		}
		configured := false
		for _, c := range order {
			configured = configured || c == got
		}
		if !configured {
			t.Fatalf("%q: chose %s, not among %v", header, codingTokens[got], order)
		}
		if q := a.q[got]; q == 0 || (q == qNotNamed && a.star <= 0) {
			t.Fatalf("%q: chose %s, which the client refused", header, codingTokens[got])
		}
	})
}

// orderFromBits makes an algorithms list (1 to 3 codings, no repeats) from
// a fuzzed byte.
func orderFromBits(b uint8) []coding {
	var order []coding
	for i := 0; i < 3; i++ {
		c := coding(1 + (b>>(2*i))%3)
		dup := false
		for _, o := range order {
			dup = dup || o == c
		}
		if !dup {
			order = append(order, c)
		}
	}
	return order
}

var refQValue = regexp.MustCompile(`^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$`)

// referenceChoose is the negotiation written the slow, obvious way.
func referenceChoose(fields []string, order []coding) coding {
	const ows = " \t"
	qs := map[string]int{}
	for _, f := range fields {
		for _, elem := range strings.Split(f, ",") {
			parts := strings.Split(elem, ";")
			name := strings.Trim(parts[0], ows)
			if name == "" {
				continue
			}
			for _, known := range []string{"identity", "gzip", "br", "zstd", "*"} {
				if strings.EqualFold(name, known) {
					name = known
				}
			}
			if strings.EqualFold(name, "x-gzip") {
				name = "gzip"
			}
			q := 1000
			for _, p := range parts[1:] {
				k, v, ok := strings.Cut(p, "=")
				if !strings.EqualFold(strings.Trim(k, ows), "q") {
					continue
				}
				q = 0
				if v = strings.Trim(v, ows); ok && refQValue.MatchString(v) {
					fv, _ := strconv.ParseFloat(v, 64)
					q = int(fv*1000 + 0.5)
				}
				break
			}
			if old, seen := qs[name]; !seen || q < old {
				qs[name] = q
			}
		}
	}
	qOf := func(name string) int {
		if q, ok := qs[name]; ok {
			return q
		}
		if q, ok := qs["*"]; ok {
			return q
		}
		return -1
	}
	best, bestQ := codingIdentity, 0
	for _, c := range order {
		if q := qOf(string(codingTokens[c])); q > bestQ {
			best, bestQ = c, q
		}
	}
	if iq, ok := qs["identity"]; ok && best != codingIdentity && iq > bestQ {
		return codingIdentity
	}
	return best
}
