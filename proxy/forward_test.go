package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPathAndQueryPassByteForByte(t *testing.T) {
	var rec recorder
	up := upstreamServer(t, rec.handler(nil))
	addr, _ := oneRoute(t, testUpstreamOptions(addrOf(up)))
	for _, target := range []string{
		"/news/a%2Fb/../c//d?x=1&y=%20&z=%zz&&",
		"/%7Euser/./x?q=a+b&q=c",
		"/UPPER/lower?B=%2f",
		"/a;b=c/d",
	} {
		resp, _ := rawResponse(t, addr, "GET "+target+" HTTP/1.1\r\nHost: example.com\r\n\r\n", "GET")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", target, resp.StatusCode)
		}
		if got := rec.last(t).uri; got != target {
			t.Errorf("upstream got %q, want %q", got, target)
		}
	}
}

func TestAbsoluteFormIsSentAsOriginForm(t *testing.T) {
	var rec recorder
	up := upstreamServer(t, rec.handler(nil))
	addr, _ := oneRoute(t, testUpstreamOptions(addrOf(up)))
	resp, _ := rawResponse(t, addr, "GET http://example.com/p/q?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", "GET")
	if resp.StatusCode != 200 || rec.last(t).uri != "/p/q?x=1" {
		t.Fatalf("status %d, upstream uri %q", resp.StatusCode, rec.last(t).uri)
	}
}

func TestHeadersPassInOrderAndHopByHopAreRemoved(t *testing.T) {
	var rec recorder
	up := rawUpstream(t, func(c net.Conn) {
		req, _, err := readRequestHead(c)
		if err != nil {
			return
		}
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recorded{method: req.Method, uri: req.RequestURI, host: req.Host, header: req.Header})
		rec.mu.Unlock()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nconnection: X-Secret-Resp, keep-alive\r\nX-Secret-Resp: 1\r\nKeep-Alive: timeout=5\r\nX-Kept: a\r\nX-Kept: b\r\nproxy-authenticate: Basic\r\nUpgrade: h2c\r\nTrailer: X-T\r\n\r\nok")
	})
	addr, _ := oneRoute(t, testUpstreamOptions(up))
	req := "GET /x HTTP/1.1\r\nHost: example.com\r\n" +
		"X-First: 1\r\nconnection: x-drop-me, Keep-Alive\r\nX-Drop-Me: secret\r\nKEEP-ALIVE: 300\r\n" +
		"X-Repeat: a\r\nTe: trailers\r\nX-Repeat: b\r\nProxy-Authorization: Basic Zm9v\r\nProxy-Connection: keep-alive\r\n" +
		"Upgrade: websocket\r\nTrailer: X-T\r\nx-lower-case: kept\r\nX-Last: z\r\n\r\n"
	resp, body := rawResponse(t, addr, req, "GET")
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	got := rec.last(t).header
	for _, h := range []string{"Connection", "X-Drop-Me", "Keep-Alive", "Te", "Proxy-Authorization", "Proxy-Connection", "Upgrade", "Trailer"} {
		if v, ok := got[http.CanonicalHeaderKey(h)]; ok {
			t.Errorf("upstream received hop-by-hop %s: %q", h, v)
		}
	}
	if v := got["X-Repeat"]; len(v) != 2 || v[0] != "a" || v[1] != "b" {
		t.Errorf("repeated header = %q", v)
	}
	if got.Get("X-Lower-Case") != "kept" { // its case is checked by TestHeaderOrderAndCaseReachUpstream
		t.Errorf("x-lower-case lost: %v", got)
	}
	for _, h := range []string{"X-Secret-Resp", "Keep-Alive", "Proxy-Authenticate", "Upgrade", "Trailer"} {
		if v := resp.Header.Values(h); len(v) > 0 {
			t.Errorf("client received hop-by-hop %s: %q", h, v)
		}
	}
	if v := resp.Header.Values("X-Kept"); len(v) != 2 {
		t.Errorf("response repeated header = %q", v)
	}
}

func TestHeaderOrderAndCaseReachUpstream(t *testing.T) {
	lines := make(chan string, 1)
	up := rawUpstream(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		n, _ := c.Read(buf)
		lines <- string(buf[:n])
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	})
	addr, _ := oneRoute(t, testUpstreamOptions(up))
	rawResponse(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nx-b: 1\r\nX-A: 2\r\nx-c: 3\r\n\r\n", "GET")
	got := <-lines
	ib, ia, ic := strings.Index(got, "\r\nx-b: 1\r\n"), strings.Index(got, "\r\nX-A: 2\r\n"), strings.Index(got, "\r\nx-c: 3\r\n")
	if ib < 0 || ia < 0 || ic < 0 || ib > ia || ia > ic {
		t.Fatalf("order or case changed:\n%s", got)
	}
}

func TestForwardedHeaders(t *testing.T) {
	var rec recorder
	up := upstreamServer(t, rec.handler(nil))
	o := testOptions()
	o.Upstreams["up"] = testUpstreamOptions(addrOf(up))
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
	addr, _ := startProxy(t, o)

	// Untrusted client: its X-Forwarded-For is replaced.
	get(t, "http://"+addr+"/", "X-Forwarded-For", "6.6.6.6", "X-Forwarded-Proto", "https", "Host", "shop.example.com:8080")
	h := rec.last(t).header
	if got := h.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the client address alone", got)
	}
	if got := h.Get("X-Forwarded-Proto"); got != "http" {
		t.Errorf("X-Forwarded-Proto = %q", got)
	}
	if got := h.Get("X-Forwarded-Host"); got != "shop.example.com:8080" {
		t.Errorf("X-Forwarded-Host = %q", got)
	}
	id := h.Get("X-Request-Id")
	if len(id) != 32 {
		t.Errorf("generated X-Request-Id = %q", id)
	}
	get(t, "http://"+addr+"/")
	if id2 := rec.last(t).header.Get("X-Request-Id"); id2 == id || len(id2) != 32 {
		t.Errorf("request ids not unique: %q %q", id, id2)
	}
	get(t, "http://"+addr+"/", "X-Request-Id", "abc-123")
	if got := rec.last(t).header.Values("X-Request-Id"); len(got) != 1 || got[0] != "abc-123" {
		t.Errorf("incoming X-Request-Id not kept: %q", got)
	}

	// Trusted client: its value is kept and appended to.
	o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	addr2, _ := startProxy(t, o)
	get(t, "http://"+addr2+"/", "X-Forwarded-For", "1.2.3.4, 5.6.7.8")
	if got := rec.last(t).header.Get("X-Forwarded-For"); got != "1.2.3.4, 5.6.7.8, 127.0.0.1" {
		t.Errorf("trusted X-Forwarded-For = %q", got)
	}
}

func TestHostModes(t *testing.T) {
	var rec recorder
	up := upstreamServer(t, rec.handler(nil))
	for _, tc := range []struct {
		mode, want string
	}{
		{HostPreserve, "client.example.com"},
		{HostUpstream, addrOf(up)},
		{"internal.news", "internal.news"},
	} {
		uo := testUpstreamOptions(addrOf(up))
		uo.Host = tc.mode
		addr, _ := oneRoute(t, uo)
		get(t, "http://"+addr+"/", "Host", "client.example.com")
		if got := rec.last(t).host; got != tc.want {
			t.Errorf("host = %q: upstream got Host %q, want %q", tc.mode, got, tc.want)
		}
	}
	// HTTP/1.0 without Host under "preserve": the server's address.
	addr, _ := oneRoute(t, testUpstreamOptions(addrOf(up)))
	resp, _ := rawResponse(t, addr, "GET / HTTP/1.0\r\n\r\n", "GET")
	if resp.StatusCode != 200 || rec.last(t).host != addrOf(up) {
		t.Errorf("HTTP/1.0 without Host: status %d, upstream Host %q", resp.StatusCode, rec.last(t).host)
	}
}

func TestRouting(t *testing.T) {
	servers := map[string]string{}
	o := testOptions()
	for _, name := range []string{"root", "news", "newsapi", "wild", "exact", "strip"} {
		name := name
		up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s", name, r.RequestURI)
		})
		servers[name] = addrOf(up)
		o.Upstreams[name] = testUpstreamOptions(addrOf(up))
	}
	o.Routes = []RouteOptions{
		{PathPrefix: "/", Upstream: "root", Host: "only.example.com"},
		{PathPrefix: "/news/", Upstream: "news"},
		{PathPrefix: "/news/", Upstream: "wild", Host: "*.example.com"},
		{PathPrefix: "/news/", Upstream: "exact", Host: "API.example.com"},
		{PathPrefix: "/news/api/", Upstream: "newsapi"},
		{PathPrefix: "/s/", Upstream: "strip", StripPrefix: true},
		{PathPrefix: "/t", Upstream: "strip", StripPrefix: true, Host: "t.test"},
	}
	addr, _ := startProxy(t, o)
	tests := []struct {
		host, path string
		status     int
		body       string
	}{
		{"any.test", "/news/a", 200, "news /news/a"},
		{"any.test", "/news/api/x?y=1", 200, "newsapi /news/api/x?y=1"},
		{"api.example.com:8080", "/news/a", 200, "exact /news/a"},
		{"Api.Example.Com", "/news/a", 200, "exact /news/a"},
		{"www.example.com", "/news/a", 200, "wild /news/a"},
		{"example.com", "/news/a", 200, "news /news/a"},                // *.example.com excludes example.com
		{"api.example.com", "/news/api/x", 200, "newsapi /news/api/x"}, // longer prefix wins over host
		{"only.example.com", "/other", 200, "root /other"},
		{"any.test", "/other", 404, ""},
		{"any.test", "/s/a/b?q", 200, "strip /a/b?q"},
		{"any.test", "/s/", 200, "strip /"},
		{"t.test", "/t", 200, "strip /"},
		{"t.test", "/tx", 200, "strip /x"},
	}
	for _, tt := range tests {
		resp, body := get(t, "http://"+addr+tt.path, "Host", tt.host)
		if resp.StatusCode != tt.status || (tt.body != "" && body != tt.body) {
			t.Errorf("%s %s: %d %q, want %d %q", tt.host, tt.path, resp.StatusCode, body, tt.status, tt.body)
		}
	}
}

func TestKeepAlivePoolBoundedByMaxConns(t *testing.T) {
	var conns, active, peak atomic.Int64
	up := httptestServerWithConnState(t, func(w http.ResponseWriter, r *http.Request) {
		n := active.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		active.Add(-1)
		io.WriteString(w, "ok")
	}, &conns)
	uo := testUpstreamOptions(up)
	uo.MaxConnsPerServer = 2
	uo.ConnWaitTimeout = 5 * time.Second
	addr, _ := oneRoute(t, uo)

	var wg sync.WaitGroup
	var fails atomic.Int64
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				resp, _ := get(t, "http://"+addr+"/")
				if resp.StatusCode != 200 {
					fails.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if fails.Load() != 0 {
		t.Errorf("%d requests failed", fails.Load())
	}
	if peak.Load() > 2 || conns.Load() > 2 {
		t.Errorf("upstream saw %d concurrent requests on %d connections; max_conns_per_server = 2", peak.Load(), conns.Load())
	}
}

func TestWaitForFreeConnectionIsBounded(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "ok")
	})
	defer close(release)
	uo := testUpstreamOptions(addrOf(up))
	uo.MaxConnsPerServer = 1
	uo.ConnWaitTimeout = 100 * time.Millisecond
	uo.Retries = 0
	addr, _ := oneRoute(t, uo)
	go fetch("http://" + addr + "/slow")
	<-arrived // the first request holds the only connection
	start := time.Now()
	resp, _ := get(t, "http://"+addr+"/")
	if resp.StatusCode != 502 || time.Since(start) > 2*time.Second {
		t.Errorf("status %d after %v; want 502 within the wait bound", resp.StatusCode, time.Since(start))
	}
}

// fetch is get for goroutines other than the test's: it reports nothing.
func fetch(url string) {
	resp, err := testClient.Get(url)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func httptestServerWithConnState(t *testing.T, h http.HandlerFunc, conns *atomic.Int64) string {
	t.Helper()
	srv := &http.Server{Handler: h, ConnState: func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, cond func() bool, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}
