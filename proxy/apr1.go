package proxy

import (
	"crypto/md5"
	"crypto/subtle"
	"errors"
	"strings"
)

// apr1Magic starts Apache's MD5-crypt variant (htpasswd -m), the default
// of Apache's htpasswd before 2.4 and of many generators since.
const apr1Magic = "$apr1$"

// apr1Hash is "$apr1$salt$digest": the salt (at most 8 characters) and the
// 22-character digest in crypt's base-64 alphabet.
type apr1Hash struct {
	salt   []byte
	digest []byte
}

var errMalformedApr1 = errors.New(`malformed $apr1$ hash: want "$apr1$SALT$DIGEST" with a salt of 1 to 8 characters and a 22-character digest`)

func parseApr1(s string) (passwordHash, error) {
	rest := s[len(apr1Magic):]
	i := strings.IndexByte(rest, '$')
	if i < 1 || i > 8 {
		return nil, errMalformedApr1
	}
	salt, digest := rest[:i], rest[i+1:]
	if len(digest) != 22 || strings.Trim(digest, cryptAlphabet) != "" {
		return nil, errMalformedApr1
	}
	return apr1Hash{salt: []byte(salt), digest: []byte(digest)}, nil
}

func (h apr1Hash) matches(p []byte) bool {
	var buf [22]byte
	return subtle.ConstantTimeCompare(apr1Digest(buf[:0], p, h.salt), h.digest) == 1
}

func (apr1Hash) kind() string { return "apr1" }

const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// apr1Digest appends the 22-character MD5-crypt digest of password with
// salt and the "$apr1$" magic (Poul-Henning Kamp's algorithm, as Apache's
// apr_md5_encode runs it). The work does not depend on the password's
// correctness: 1,002 MD5 blocks of inputs whose length is fixed by it.
func apr1Digest(dst, password, salt []byte) []byte {
	alt := md5.New()
	alt.Write(password)
	alt.Write(salt)
	alt.Write(password)
	var altSum [md5.Size]byte
	alt.Sum(altSum[:0])

	h := md5.New()
	h.Write(password)
	h.Write([]byte(apr1Magic))
	h.Write(salt)
	for i := len(password); i > 0; i -= md5.Size {
		h.Write(altSum[:min(i, md5.Size)])
	}
	for i := len(password); i > 0; i >>= 1 {
		if i&1 != 0 {
			h.Write([]byte{0})
		} else {
			h.Write(password[:1])
		}
	}
	var sum [md5.Size]byte
	h.Sum(sum[:0])

	for i := 0; i < 1000; i++ {
		h.Reset()
		if i&1 != 0 {
			h.Write(password)
		} else {
			h.Write(sum[:])
		}
		if i%3 != 0 {
			h.Write(salt)
		}
		if i%7 != 0 {
			h.Write(password)
		}
		if i&1 != 0 {
			h.Write(sum[:])
		} else {
			h.Write(password)
		}
		h.Sum(sum[:0])
	}

	to64 := func(v uint32, n int) {
		for ; n > 0; n-- {
			dst = append(dst, cryptAlphabet[v&0x3f])
			v >>= 6
		}
	}
	for _, g := range [5][3]int{{0, 6, 12}, {1, 7, 13}, {2, 8, 14}, {3, 9, 15}, {4, 10, 5}} {
		to64(uint32(sum[g[0]])<<16|uint32(sum[g[1]])<<8|uint32(sum[g[2]]), 4)
	}
	to64(uint32(sum[11]), 2)
	return dst
}
