package proxy

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"
)

// DefaultRealm is the realm a route with basic_auth_file and no realm
// names in its challenge.
const DefaultRealm = "Restricted"

// basicAuthStep checks credentials against an htpasswd file (nginx
// auth_basic / auth_basic_user_file), read when the route compiles and so
// again on every reload. Missing or wrong credentials get 401 with the
// challenge; right ones pass, with Authorization forwarded unchanged as
// nginx does.
type basicAuthStep struct {
	users     *htpasswd
	challenge []byte // the WWW-Authenticate value
}

func newBasicAuthStep(file, realm string) (*basicAuthStep, error) {
	users, err := loadHtpasswd(file)
	if err != nil {
		return nil, fmt.Errorf("basic_auth_file: %w", err)
	}
	if realm == "" {
		realm = DefaultRealm
	}
	return &basicAuthStep{users: users, challenge: []byte(basicChallenge(realm))}, nil
}

// basicChallenge is `Basic realm="…"` with realm as a quoted-string.
func basicChallenge(realm string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `Basic realm="` + r.Replace(realm) + `"`
}

func (b *basicAuthStep) onRequest(ctx *fasthttp.RequestCtx, ex *exchange) bool {
	value, n := peekAllFold(&ctx.Request.Header, hAuthorization)
	var user, password []byte
	ok := n == 1
	if ok {
		user, password, ex.scratch, ok = basicCredentials(ex.scratch[:0], value)
	}
	if ok {
		// An unknown user is checked against a dummy of the same kind and
		// cost, so a response's timing tells no user name from another.
		hash, known := b.users.users[string(user)]
		if !known {
			hash = b.users.dummy
		}
		if hash.matches(password) && known {
			return false
		}
	}
	switch {
	case n == 0:
		ex.cause = "basic auth: no credentials"
	case !ok:
		ex.cause = "basic auth: malformed Authorization"
	default:
		ex.cause = "basic auth: wrong user or password"
	}
	writeError(ctx, fasthttp.StatusUnauthorized)
	ctx.Response.Header.SetBytesKV(hWWWAuthenticate, b.challenge)
	return true
}

var (
	hAuthorization   = []byte("Authorization")
	hWWWAuthenticate = []byte("WWW-Authenticate")
	basicScheme      = []byte("basic")
)

// peekAllFold returns the first field named name in any case, and how many
// there are.
func peekAllFold(h *fasthttp.RequestHeader, name []byte) (first []byte, n int) {
	for k, v := range h.All() {
		if bytes.EqualFold(k, name) {
			if n == 0 {
				first = v
			}
			n++
		}
	}
	return first, n
}

// basicCredentials parses an Authorization value of the Basic scheme
// (RFC 7617): the scheme in any case, spaces, then base64 of "user:password"
// (padding optional, as nginx decodes it). The decoded bytes are appended
// to buf, which user and password point into.
func basicCredentials(buf, value []byte) (user, password, out []byte, ok bool) {
	if len(value) <= len(basicScheme) || !bytes.EqualFold(value[:len(basicScheme)], basicScheme) || value[len(basicScheme)] != ' ' {
		return nil, nil, buf, false
	}
	enc := bytes.Trim(value[len(basicScheme):], " \t")
	if len(enc) == 0 {
		return nil, nil, buf, false
	}
	encoding := base64.StdEncoding
	if len(enc)%4 != 0 {
		encoding = base64.RawStdEncoding
	}
	start := len(buf)
	need := start + encoding.DecodedLen(len(enc))
	if cap(buf) < need {
		buf = append(buf[:cap(buf)], make([]byte, need-cap(buf))...)
	}
	buf = buf[:need]
	n, err := encoding.Decode(buf[start:], enc)
	if err != nil {
		return nil, nil, buf[:start], false
	}
	buf = buf[:start+n]
	decoded := buf[start:]
	colon := bytes.IndexByte(decoded, ':')
	if colon < 0 {
		return nil, nil, buf, false
	}
	return decoded[:colon], decoded[colon+1:], buf, true
}
