package proxy

import (
	"bytes"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// cacheControl is what the Cache-Control fields (RFC 9111 §5.2, and RFC
// 5861's stale windows) of one message say. Durations are seconds, -1
// when absent. Qualified forms (no-cache="Set-Cookie", private="X") are
// read as their unqualified, stricter selves.
type cacheControl struct {
	noStore, noCache, private, public      bool
	mustRevalidate, onlyIfCached, maxStale bool // maxStale: present without a value
	maxAge, sMaxAge, maxStaleSec, minFresh int64
	swr, sie                               int64
	pragmaNoCache                          bool
}

func (c *cacheControl) reset() {
	*c = cacheControl{maxAge: -1, sMaxAge: -1, maxStaleSec: -1, minFresh: -1, swr: -1, sie: -1}
}

// parse adds one field value's directives.
func (c *cacheControl) parse(v []byte) {
	for len(v) > 0 {
		var e []byte
		e, v, _ = bytes.Cut(v, comma)
		name, arg := trimOWS(e), []byte(nil)
		if i := bytes.IndexByte(name, '='); i >= 0 {
			name, arg = trimOWS(name[:i]), trimOWS(name[i+1:])
			if len(arg) >= 2 && arg[0] == '"' && arg[len(arg)-1] == '"' {
				arg = arg[1 : len(arg)-1]
			}
		}
		switch {
		case eqFold(name, "no-store"):
			c.noStore = true
		case eqFold(name, "no-cache"):
			c.noCache = true
		case eqFold(name, "private"):
			c.private = true
		case eqFold(name, "public"):
			c.public = true
		case eqFold(name, "must-revalidate"), eqFold(name, "proxy-revalidate"):
			c.mustRevalidate = true
		case eqFold(name, "only-if-cached"):
			c.onlyIfCached = true
		case eqFold(name, "max-age"):
			c.maxAge = seconds(arg)
		case eqFold(name, "s-maxage"):
			c.sMaxAge = seconds(arg)
		case eqFold(name, "max-stale"):
			if arg == nil {
				c.maxStale = true
			} else {
				c.maxStaleSec = seconds(arg)
			}
		case eqFold(name, "min-fresh"):
			c.minFresh = seconds(arg)
		case eqFold(name, "stale-while-revalidate"):
			c.swr = seconds(arg)
		case eqFold(name, "stale-if-error"):
			c.sie = seconds(arg)
		}
	}
}

// seconds parses delta-seconds; a value that is not one counts as 0
// (RFC 9111 §1.2.2: treat it as stale), a huge one saturates.
func seconds(b []byte) int64 {
	if len(b) == 0 {
		return 0
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0
		}
		if n > 1<<31 {
			return 1 << 31
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

func eqFold(b []byte, s string) bool { return bytesEqualFoldString(b, s) }

// requestCacheControl reads a request's Cache-Control and Pragma fields.
func requestCacheControl(h *fasthttp.RequestHeader, c *cacheControl) {
	c.reset()
	for k, v := range h.All() {
		switch {
		case eqFold(k, "Cache-Control"):
			c.parse(v)
		case eqFold(k, "Pragma") && fieldHasToken(v, []byte("no-cache")):
			c.pragmaNoCache = true
		}
	}
	if c.pragmaNoCache {
		c.noCache = true
	}
}

// responseFacts is what a response head says for storing it.
type responseFacts struct {
	cc          cacheControl
	setCookie   bool
	vary        []byte // the Vary field values joined; "*" refuses
	date        time.Time
	expires     time.Time
	hasExpires  bool
	badExpires  bool
	age         int64
	hasValidtor bool
	contentRng  bool
}

func readResponseFacts(h *fasthttp.ResponseHeader, f *responseFacts, scratch []byte) []byte {
	*f = responseFacts{}
	f.cc.reset()
	scratch = scratch[:0]
	for k, v := range h.All() {
		switch {
		case eqFold(k, "Cache-Control"):
			f.cc.parse(v)
		case eqFold(k, "Set-Cookie"):
			f.setCookie = true
		case eqFold(k, "Vary"):
			if len(scratch) > 0 {
				scratch = append(scratch, ',')
			}
			scratch = append(scratch, v...)
		case eqFold(k, "Date"):
			f.date, _ = fasthttp.ParseHTTPDate(v)
		case eqFold(k, "Expires"):
			f.hasExpires = true
			var ok bool
			if f.expires, ok = parseHTTPDateStrict(v); !ok {
				f.badExpires = true // stale at once (RFC 9111 §5.3)
			}
		case eqFold(k, "Age"):
			f.age = seconds(trimOWS(v))
		case eqFold(k, "ETag"), eqFold(k, "Last-Modified"):
			f.hasValidtor = true
		case eqFold(k, "Content-Range"):
			f.contentRng = true
		}
	}
	f.vary = scratch
	return scratch
}

// explicit reports whether the upstream said how long the answer is fresh.
func (f *responseFacts) explicit() bool {
	return f.cc.sMaxAge >= 0 || f.cc.maxAge >= 0 || f.hasExpires || f.cc.noCache
}

// lifetime is the freshness lifetime (RFC 9111 §4.2.1); def is the
// route's max_age, used when the upstream says nothing.
func (f *responseFacts) lifetime(now time.Time, def time.Duration) time.Duration {
	switch {
	case f.cc.noCache:
		return 0
	case f.cc.sMaxAge >= 0:
		return time.Duration(f.cc.sMaxAge) * time.Second
	case f.cc.maxAge >= 0:
		return time.Duration(f.cc.maxAge) * time.Second
	case f.hasExpires:
		if f.badExpires {
			return 0
		}
		date := f.date
		if date.IsZero() {
			date = now
		}
		return max(f.expires.Sub(date), 0)
	}
	return def
}

// storableStatus are the statuses a cache stores (RFC 9110 §15.1's
// heuristically cacheable ones, and 302/307 when explicitly fresh).
func storableStatus(status int, explicit bool) bool {
	switch status {
	case 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	case 302, 307:
		return explicit
	}
	return false
}

// parseHTTPDateStrict accepts the three HTTP-date forms of RFC 9110
// §5.6.7 exactly; anything else (fasthttp's parser is lenient) is invalid.
func parseHTTPDateStrict(v []byte) (time.Time, bool) {
	s := string(trimOWS(v))
	for _, layout := range []string{time.RFC1123, time.RFC850, time.ANSIC} {
		// A round trip rejects what Parse forgives (runs of spaces, one-digit hours).
		if t, err := time.Parse(layout, s); err == nil && strings.HasSuffix(layout, "MST") == strings.HasSuffix(s, "GMT") &&
			afterWeekday(t.Format(layout)) == afterWeekday(s) {
			return t, true
		}
	}
	return time.Time{}, false
}

// afterWeekday drops the day name, which a cache has no use to check.
func afterWeekday(s string) string {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[i:]
	}
	return s
}
