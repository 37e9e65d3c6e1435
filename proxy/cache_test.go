package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/respcache"
)

// scripted is an upstream whose answer a test sets, counting requests.
type scripted struct {
	hits  atomic.Int64
	mu    sync.Mutex
	reply func(w http.ResponseWriter, r *http.Request)
	last  http.Header
}

func (s *scripted) set(f func(w http.ResponseWriter, r *http.Request)) {
	s.mu.Lock()
	s.reply = f
	s.mu.Unlock()
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	f := s.reply
	s.last = r.Header.Clone()
	s.mu.Unlock()
	w.Header()["Date"] = nil // tests move the proxy's clock; a real Date would age answers
	f(w, r)
}

func (s *scripted) lastHeader() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// fixed answers body with the given header pairs.
func fixed(body string, hdr ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Add(hdr[i], hdr[i+1])
		}
		io.WriteString(w, body)
	}
}

type cacheEnv struct {
	up    *scripted
	base  string
	srv   *Server
	store *respcache.Store
	clock *testClock
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newCacheEnv(t testing.TB, co CacheOptions) *cacheEnv {
	t.Helper()
	st, err := respcache.New(respcache.Options{MaxBytes: 16 << 20, MaxEntryBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	env := &cacheEnv{up: &scripted{}, store: st, clock: &testClock{t: time.Now()}}
	env.up.set(fixed("hello", "Cache-Control", "max-age=60"))
	u := upstreamServer(t, env.up.ServeHTTP)
	o := testOptions()
	o.Now = env.clock.now
	o.ResponseCache = st
	o.Upstreams["up"] = testUpstreamOptions(addrOf(u))
	co.Enabled = true
	if co.MaxBody == 0 {
		co.MaxBody = 64 << 10
	}
	o.Routes = []RouteOptions{{Name: "c", PathPrefix: "/", Upstream: "up", Cache: co}}
	addr, srv := startProxy(t, o)
	env.base, env.srv = "http://"+addr, srv
	return env
}

func (e *cacheEnv) get(t testing.TB, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	return get(t, e.base+path, hdr...)
}

func wantCache(t testing.TB, resp *http.Response, want string) {
	t.Helper()
	if got := resp.Header.Get("X-Cache"); got != want {
		t.Fatalf("X-Cache = %q, want %q (status %d)", got, want, resp.StatusCode)
	}
}

func (e *cacheEnv) wantHits(t testing.TB, n int64) {
	t.Helper()
	if got := e.up.hits.Load(); got != n {
		t.Fatalf("upstream saw %d requests, want %d", got, n)
	}
}

func TestCacheHitMissAndAge(t *testing.T) {
	e := newCacheEnv(t, CacheOptions{Lock: true})
	r, body := e.get(t, "/a")
	wantCache(t, r, "MISS")
	if body != "hello" {
		t.Fatalf("body %q", body)
	}
	e.clock.advance(5 * time.Second)
	r, body = e.get(t, "/a")
	wantCache(t, r, "HIT")
	if body != "hello" || r.Header.Get("Age") != "5" || r.Header.Get("Cache-Control") != "max-age=60" {
		t.Fatalf("hit: body %q Age %q CC %q", body, r.Header.Get("Age"), r.Header.Get("Cache-Control"))
	}
	e.wantHits(t, 1)
	// Another query is another key.
	r, _ = e.get(t, "/a?x=1")
	wantCache(t, r, "MISS")
	e.wantHits(t, 2)
	// HEAD is answered from the GET's entry with its length.
	req, _ := http.NewRequest("HEAD", e.base+"/a", nil)
	hr, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	hr.Body.Close()
	wantCache(t, hr, "HIT")
	if hr.ContentLength != 5 {
		t.Fatalf("HEAD Content-Length %d", hr.ContentLength)
	}
	e.wantHits(t, 2)
}

func TestCacheNeverStored(t *testing.T) {
	cases := []struct {
		name string
		hdr  []string
		req  []string
	}{
		{"no-store", []string{"Cache-Control", "no-store, max-age=60"}, nil},
		{"private", []string{"Cache-Control", "private, max-age=60"}, nil},
		{"set-cookie", []string{"Cache-Control", "max-age=60", "Set-Cookie", "s=1"}, nil},
		{"vary-star", []string{"Cache-Control", "max-age=60", "Vary", "*"}, nil},
		{"authorization", []string{"Cache-Control", "max-age=60"}, []string{"Authorization", "Bearer x"}},
		{"nothing-said-no-default", nil, nil},
		{"request-no-store", []string{"Cache-Control", "max-age=60"}, []string{"Cache-Control", "no-store"}},
		{"status-500", []string{"Cache-Control", "max-age=60", "X-Status", "500"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newCacheEnv(t, CacheOptions{Lock: true})
			h := fixed("x", c.hdr...)
			e.up.set(func(w http.ResponseWriter, r *http.Request) {
				if len(c.hdr) >= 4 && c.hdr[2] == "X-Status" {
					w.WriteHeader(500)
				}
				h(w, r)
			})
			e.get(t, "/n", c.req...)
			r, _ := e.get(t, "/n", c.req...)
			if r.Header.Get("X-Cache") == "HIT" {
				t.Fatal("served from cache")
			}
			e.wantHits(t, 2)
		})
	}
}

func TestCacheAuthorizationWithPublic(t *testing.T) {
	e := newCacheEnv(t, CacheOptions{Lock: true})
	for _, cc := range []string{"public, max-age=60", "s-maxage=60"} {
		e.up.set(fixed("x", "Cache-Control", cc))
		p := "/auth?" + cc[:3]
		e.get(t, p, "Authorization", "Bearer a")
		r, _ := e.get(t, p, "Authorization", "Bearer a")
		wantCache(t, r, "HIT")
	}
	e.wantHits(t, 2)
}

func TestCacheDefaultMaxAgeAndExpires(t *testing.T) {
	e := newCacheEnv(t, CacheOptions{Lock: true, MaxAge: 10 * time.Second})
	e.up.set(fixed("x"))
	e.get(t, "/d")
	r, _ := e.get(t, "/d")
	wantCache(t, r, "HIT")
	e.clock.advance(11 * time.Second)
	r, _ = e.get(t, "/d")
	wantCache(t, r, "MISS")
	e.wantHits(t, 2)

	// Expires in the past is stale at once, whatever max_age says.
	e.up.set(fixed("x", "Expires", "Thu, 01 Jan 1970 00:00:00 GMT"))
	e.get(t, "/e")
	r, _ = e.get(t, "/e")
	wantCache(t, r, "MISS")
	// s-maxage wins over max-age.
	e.up.set(fixed("x", "Cache-Control", "max-age=0, s-maxage=30"))
	e.get(t, "/s")
	r, _ = e.get(t, "/s")
	wantCache(t, r, "HIT")
}

func TestCacheRequestDirectives(t *testing.T) {
	e := newCacheEnv(t, CacheOptions{Lock: true})
	e.get(t, "/r")
	r, _ := e.get(t, "/r", "Cache-Control", "no-cache")
	wantCache(t, r, "MISS") // revalidated: no validators, so a full answer
	e.wantHits(t, 2)
	e.clock.advance(10 * time.Second)
	r, _ = e.get(t, "/r", "Cache-Control", "max-age=5")
	if r.Header.Get("X-Cache") == "HIT" {
		t.Fatal("max-age=5 served a 10 s old answer")
	}
	r, _ = e.get(t, "/r", "Pragma", "no-cache")
	wantCache(t, r, "MISS")
	r, _ = e.get(t, "/other", "Cache-Control", "only-if-cached")
	if r.StatusCode != 504 {
		t.Fatalf("only-if-cached miss: %d", r.StatusCode)
	}
}

func TestCacheConditionalFromCache(t *testing.T) {
	e := newCacheEnv(t, CacheOptions{Lock: true})
	e.up.set(fixed("body", "Cache-Control", "max-age=60", "ETag", `"v1"`, "Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT"))
	e.get(t, "/c")
	r, body := e.get(t, "/c", "If-None-Match", `"v0", W/"v1"`)
	if r.StatusCode != 304 || body != "" || r.Header.Get("ETag") != `"v1"` {
		t.Fatalf("INM: %d %q", r.StatusCode, body)
	}
	wantCache(t, r, "HIT")
	r, _ = e.get(t, "/c", "If-Modified-Since", "Tue, 02 Jan 2024 00:00:00 GMT")
	if r.StatusCode != 304 {
		t.Fatalf("IMS: %d", r.StatusCode)
	}
	r, _ = e.get(t, "/c", "If-None-Match", `"other"`)
	if r.StatusCode != 200 {
		t.Fatalf("no match: %d", r.StatusCode)
	}
	e.wantHits(t, 1)
}

func TestCacheRevalidation(t *testing.T) {
	e := newCacheEnv(t, CacheOptions{Lock: true})
	var sawINM atomic.Value
	sawINM.Store("")
	e.up.set(func(w http.ResponseWriter, r *http.Request) {
		sawINM.Store(r.Header.Get("If-None-Match"))
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(304)
			return
		}
		io.WriteString(w, "full")
	})
	e.get(t, "/v")
	e.clock.advance(11 * time.Second)
	r, body := e.get(t, "/v")
	wantCache(t, r, "REVALIDATED")
	if body != "full" || sawINM.Load() != `"v1"` {
		t.Fatalf("body %q, upstream If-None-Match %q", body, sawINM.Load())
	}
	r, _ = e.get(t, "/v")
	wantCache(t, r, "HIT")
	e.wantHits(t, 2)
}

func TestCacheStaleWhileRevalidate(t *testing.T) {
	e := newCacheEnv(t, CacheOptions{Lock: true, StaleWhileRevalidate: 30 * time.Second})
	var n atomic.Int64
	e.up.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10")
		fmt.Fprintf(w, "v%d", n.Add(1))
	})
	e.get(t, "/w")
	e.clock.advance(15 * time.Second)
	r, body := e.get(t, "/w")
	wantCache(t, r, "STALE")
	if body != "v1" {
		t.Fatalf("stale body %q", body)
	}
	// The background refresh lands: the next answer is the new one.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, body = e.get(t, "/w")
		if body == "v2" {
			wantCache(t, r, "HIT")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background revalidation never stored v2 (last %q %s)", body, r.Header.Get("X-Cache"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Past both windows: a plain miss.
	e.clock.advance(60 * time.Second)
	r, _ = e.get(t, "/w")
	wantCache(t, r, "MISS")
}

func TestCacheStaleIfError(t *testing.T) {
	e := newCacheEnv(t, CacheOptions{Lock: true, StaleIfError: time.Minute})
	e.up.set(fixed("good", "Cache-Control", "max-age=1"))
	e.get(t, "/f")
	e.clock.advance(5 * time.Second)
	e.up.set(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	r, body := e.get(t, "/f")
	wantCache(t, r, "STALE")
	if body != "good" || r.StatusCode != 200 {
		t.Fatalf("%d %q", r.StatusCode, body)
	}
	// Beyond the window the error goes through.
	e.clock.advance(2 * time.Minute)
	r, _ = e.get(t, "/f")
	if r.StatusCode != 503 {
		t.Fatalf("after window: %d", r.StatusCode)
	}
}

func TestCacheStaleIfErrorConnectionRefused(t *testing.T) {
	st, _ := respcache.New(respcache.Options{MaxBytes: 4 << 20, MaxEntryBytes: 1 << 20})
	defer st.Close()
	up := &scripted{}
	up.set(fixed("good", "Cache-Control", "max-age=1"))
	u := upstreamServer(t, up.ServeHTTP)
	clock := &testClock{t: time.Now()}
	o := testOptions()
	o.Now, o.ResponseCache = clock.now, st
	o.Upstreams["up"] = testUpstreamOptions(addrOf(u))
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up", Cache: CacheOptions{Enabled: true, StaleIfError: time.Minute, MaxBody: 1 << 16}}}
	addr, _ := startProxy(t, o)
	get(t, "http://"+addr+"/g")
	u.Close()
	clock.advance(5 * time.Second)
	r, body := get(t, "http://"+addr+"/g")
	wantCache(t, r, "STALE")
	if body != "good" {
		t.Fatalf("%q", body)
	}
}

func TestCacheLockOneUpstreamRequest(t *testing.T) {
	e := newCacheEnv(t, CacheOptions{Lock: true})
	release := make(chan struct{})
	e.up.set(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "once")
	})
	var wg sync.WaitGroup
	results := make(chan string, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, b := e.get(t, "/lock")
			results <- b
		}()
	}
	// Every other request has joined the first one's fetch.
	misses := &e.srv.state.Load().named["c"].cache.misses
	waitFor(t, func() bool {
		misses.mu.Lock()
		defer misses.mu.Unlock()
		for _, fl := range misses.m { // the one flight: the first request's
			if fl.waiters.Load() == 19 {
				return true
			}
		}
		return false
	}, 10*time.Second)
	close(release)
	wg.Wait()
	close(results)
	for b := range results {
		if b != "once" {
			t.Fatalf("body %q", b)
		}
	}
	e.wantHits(t, 1)
}

func TestCacheBypass(t *testing.T) {
	e := newCacheEnv(t, CacheOptions{Lock: true, Bypass: []string{"$http_x_nocache", "$arg_nocache"}})
	e.get(t, "/b")
	r, _ := e.get(t, "/b", "X-Nocache", "1")
	wantCache(t, r, "BYPASS")
	r, _ = e.get(t, "/b", "X-Nocache", "0")
	wantCache(t, r, "HIT")
	r, _ = e.get(t, "/b?nocache=yes")
	wantCache(t, r, "BYPASS")
	e.wantHits(t, 3)
	// POST is never cached.
	resp, err := testClient.Post(e.base+"/b", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantCache(t, resp, "BYPASS")
}

func TestCacheVaryAcceptEncodingNormalised(t *testing.T) {
	e := newCacheEnv(t, CacheOptions{Lock: true})
	e.up.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Encoding, X-Lang")
		io.WriteString(w, "lang="+r.Header.Get("X-Lang"))
	})
	r, _ := e.get(t, "/v", "Accept-Encoding", "gzip, br")
	wantCache(t, r, "MISS")
	r, _ = e.get(t, "/v", "Accept-Encoding", "br;q=1,gzip")
	wantCache(t, r, "HIT")
	r, _ = e.get(t, "/v", "Accept-Encoding", "identity")
	wantCache(t, r, "MISS")
	e.wantHits(t, 2)
}

func TestCacheVaryForwardedHeader(t *testing.T) {
	e := newCacheEnv(t, CacheOptions{Lock: true, ForwardHeaders: []string{"X-Lang"}})
	e.up.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "X-Lang")
		io.WriteString(w, "lang="+r.Header.Get("X-Lang"))
	})
	_, b := e.get(t, "/l", "X-Lang", "de")
	_, b2 := e.get(t, "/l", "X-Lang", "fr")
	r, b3 := e.get(t, "/l", "X-Lang", "de")
	if b != "lang=de" || b2 != "lang=fr" || b3 != "lang=de" {
		t.Fatalf("%q %q %q", b, b2, b3)
	}
	wantCache(t, r, "HIT")
	e.wantHits(t, 2)
}

func TestCacheLargeBodyStreamsUnstored(t *testing.T) {
	e := newCacheEnv(t, CacheOptions{Lock: true, MaxBody: 1024})
	big := strings.Repeat("z", 100<<10)
	e.up.set(fixed(big, "Cache-Control", "max-age=60"))
	_, b := e.get(t, "/big")
	r, b2 := e.get(t, "/big")
	if b != big || b2 != big {
		t.Fatal("large body changed")
	}
	wantCache(t, r, "MISS")
	e.wantHits(t, 2)
	// Chunked (no length) and small: stored.
	e.up.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "part1")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part2")
	})
	e.get(t, "/chunked")
	r, b = e.get(t, "/chunked")
	wantCache(t, r, "HIT")
	if b != "part1part2" {
		t.Fatalf("%q", b)
	}
}

// TestCacheUnkeyedHeadersNeverReachUpstream: the classic cache-poisoning
// headers never reach the upstream of a cached route, so an answer built
// from them cannot be stored and served to others.
func TestCacheUnkeyedHeadersNeverReachUpstream(t *testing.T) {
	e := newCacheEnv(t, CacheOptions{Lock: true})
	e.up.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		host := r.Header.Get("X-Forwarded-Host")
		for _, h := range []string{"X-Host", "X-Original-URL", "X-Rewrite-URL", "X-Forwarded-Scheme", "X-Forwarded-Server", "X-HTTP-Method-Override"} {
			if v := r.Header.Get(h); v != "" {
				host += " " + h + "=" + v
			}
		}
		fmt.Fprintf(w, "<script src=//%s/a.js>", host)
	})
	for _, h := range []string{"X-Forwarded-Host", "X-Host", "X-Original-URL", "X-Rewrite-URL", "X-Forwarded-Scheme", "X-Forwarded-Server", "X-HTTP-Method-Override"} {
		path := "/p/" + h
		_, attacker := e.get(t, path, "Host", "site.example", h, "evil.example")
		r, victim := e.get(t, path, "Host", "site.example")
		if strings.Contains(attacker, "evil") || strings.Contains(victim, "evil") {
			t.Fatalf("%s reached the upstream: attacker %q victim %q", h, attacker, victim)
		}
		wantCache(t, r, "HIT")
	}
}

func TestCachePurgeByURLAndPrefix(t *testing.T) {
	e := newCacheEnv(t, CacheOptions{Lock: true})
	for _, p := range []string{"/img/a", "/img/b", "/other"} {
		e.get(t, p, "Host", "site.example")
	}
	e.srv.PurgeResponses("http://site.example/img/a", false, false)
	r, _ := e.get(t, "/img/a", "Host", "site.example")
	wantCache(t, r, "MISS")
	r, _ = e.get(t, "/img/b", "Host", "site.example")
	wantCache(t, r, "HIT")
	e.srv.PurgeResponses("http://site.example/img/", true, false)
	r, _ = e.get(t, "/img/b", "Host", "site.example")
	wantCache(t, r, "MISS")
	r, _ = e.get(t, "/other", "Host", "site.example")
	wantCache(t, r, "HIT")
}

func TestCacheRouteWithoutCacheUntouched(t *testing.T) {
	up := &scripted{}
	up.set(fixed("x", "Cache-Control", "max-age=60"))
	u := upstreamServer(t, up.ServeHTTP)
	addr, _ := oneRoute(t, testUpstreamOptions(addrOf(u)))
	get(t, "http://"+addr+"/x", "X-Host", "kept")
	r, _ := get(t, "http://"+addr+"/x")
	if r.Header.Get("X-Cache") != "" || up.hits.Load() != 2 {
		t.Fatalf("X-Cache %q hits %d", r.Header.Get("X-Cache"), up.hits.Load())
	}
}

// TestCacheVaryFloodStaysInBudget: every request names a new value of a
// Vary-named header; the variants live in the bounded store only.
func TestCacheVaryFloodStaysInBudget(t *testing.T) {
	st, err := respcache.New(respcache.Options{MaxBytes: 1 << 20, MaxEntryBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	up := &scripted{}
	up.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Vary", "Accept-Language")
		io.WriteString(w, strings.Repeat("x", 900))
	})
	u := upstreamServer(t, up.ServeHTTP)
	o := testOptions()
	o.ResponseCache = st
	o.Upstreams["up"] = testUpstreamOptions(addrOf(u))
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up", Cache: CacheOptions{Enabled: true, Lock: true, MaxBody: 64 << 10}}}
	addr, _ := startProxy(t, o)
	n := 3000
	for i := 0; i < n; i++ {
		get(t, "http://"+addr+"/v", "Accept-Language", fmt.Sprintf("x-%d", i))
	}
	if st.Bytes() > 1<<20 {
		t.Fatalf("store holds %d bytes, over its 1 MiB", st.Bytes())
	}
	if st.Len() >= n {
		t.Fatalf("%d entries for %d variants: nothing evicted", st.Len(), n)
	}
	r, _ := get(t, "http://"+addr+"/v", "Accept-Language", fmt.Sprintf("x-%d", n-1))
	wantCache(t, r, "HIT")
}

// TestCacheForwardingRulesKept: edgeproxy's own forwarding headers and
// what request_headers sets still reach the upstream of a cached route.
func TestCacheForwardingRulesKept(t *testing.T) {
	st, _ := respcache.New(respcache.Options{MaxBytes: 4 << 20, MaxEntryBytes: 1 << 20})
	defer st.Close()
	up := &scripted{}
	up.set(fixed("x", "Cache-Control", "max-age=60"))
	u := upstreamServer(t, up.ServeHTTP)
	o := testOptions()
	o.ResponseCache = st
	o.Upstreams["up"] = testUpstreamOptions(addrOf(u))
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up", RequestHeaders: HeaderOps{Set: map[string]string{"X-Real-IP": "$remote_addr"}},
		Cache: CacheOptions{Enabled: true, Key: "$scheme$host$request_uri$http_x_tenant", MaxBody: 1 << 16}}}
	addr, _ := startProxy(t, o)
	get(t, "http://"+addr+"/f", "Host", "site.example", "X-Tenant", "t1", "X-Custom", "dropped", "User-Agent", "ua")
	h := up.lastHeader()
	for name, want := range map[string]string{"X-Forwarded-Proto": "http", "X-Forwarded-Host": "site.example",
		"X-Real-Ip": "127.0.0.1", "X-Tenant": "t1", "User-Agent": "ua", "X-Custom": ""} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q upstream, want %q", name, got, want)
		}
	}
	if h.Get("X-Forwarded-For") == "" || h.Get("X-Request-Id") == "" {
		t.Errorf("forwarding headers missing: %v", h)
	}
}

func TestCacheUnsafeMethodInvalidates(t *testing.T) {
	e := newCacheEnv(t, CacheOptions{Lock: true})
	e.get(t, "/u")
	req, _ := http.NewRequest("DELETE", e.base+"/u", nil)
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r, _ := e.get(t, "/u")
	wantCache(t, r, "MISS")
}

func TestCacheInvalidExpiresIsStale(t *testing.T) {
	e := newCacheEnv(t, CacheOptions{Lock: true})
	for i, v := range []string{"Thu,  01 Dec 2094 16:00:00 GMT", "Thu, 01 Dec 2094 6:00:00 GMT", "soon"} {
		e.up.set(fixed("x", "Expires", v))
		p := fmt.Sprintf("/x%d", i)
		e.get(t, p)
		r, _ := e.get(t, p)
		if r.Header.Get("X-Cache") == "HIT" {
			t.Fatalf("Expires %q made an answer fresh", v)
		}
	}
	e.up.set(fixed("x", "Expires", "Thu, 01 Dec 2094 16:00:00 GMT"))
	e.get(t, "/ok")
	r, _ := e.get(t, "/ok")
	wantCache(t, r, "HIT")
}

func TestCacheHeadRevalidationStoresNoEmptyBody(t *testing.T) {
	e := newCacheEnv(t, CacheOptions{Lock: true})
	e.up.set(fixed("full body", "Cache-Control", "max-age=1"))
	e.get(t, "/h")
	e.clock.advance(5 * time.Second)
	req, _ := http.NewRequest("HEAD", e.base+"/h", nil)
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r, body := e.get(t, "/h")
	if body != "full body" {
		t.Fatalf("GET after a HEAD revalidation: %q (%s)", body, r.Header.Get("X-Cache"))
	}
}
