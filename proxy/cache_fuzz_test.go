package proxy

import (
	"testing"
	"time"
)

// FuzzCacheControl: any Cache-Control value parses without panicking,
// and durations are never negative.
func FuzzCacheControl(f *testing.F) {
	for _, s := range []string{"max-age=60", `no-cache="Set-Cookie", s-maxage=10`, "max-stale", "stale-while-revalidate=99999999999999", ",,=,", `private="x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		var c cacheControl
		c.reset()
		c.parse(v)
		for _, d := range []int64{c.maxAge, c.sMaxAge, c.maxStaleSec, c.minFresh, c.swr, c.sie} {
			if d < -1 {
				t.Fatalf("negative duration %d from %q", d, v)
			}
		}
		parseHTTPDateStrict(v)
	})
}

// FuzzDecodeEntry: a stored record that is cut or corrupted is refused,
// never read out of bounds.
func FuzzDecodeEntry(f *testing.F) {
	good := appendBody(encodeHead(nil, entryMeta{storedAt: time.Unix(1, 0), lifetime: time.Second, status: 200},
		func(add func(k, v []byte)) { add([]byte("Content-Type"), []byte("text/plain")) }), []byte("body"))
	f.Add(good)
	f.Add(good[:len(good)-2])
	f.Fuzz(func(t *testing.T, b []byte) {
		var e entry
		if decodeEntry(b, &e) {
			it := entryFields(e.fields)
			for it.next() {
			}
			e.field("ETag")
		}
	})
}
