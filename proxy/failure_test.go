package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestRefusedServerIsRetriedOnNextForAnyMethod(t *testing.T) {
	var rec recorder
	up := upstreamServer(t, rec.handler(nil))
	uo := testUpstreamOptions(closedPort(t), addrOf(up))
	uo.Retries = 1
	addr, _ := oneRoute(t, uo)
	for i := 0; i < 4; i++ {
		resp, err := testClient.Post("http://"+addr+"/p", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST %d: status %d; a refused connection sent nothing and must be retried", i, resp.StatusCode)
		}
	}
	if rec.last(t).body != "body" {
		t.Errorf("retried body = %q", rec.last(t).body)
	}
}

func TestNoServerAnswers502(t *testing.T) {
	uo := testUpstreamOptions(closedPort(t), closedPort(t))
	addr, _ := oneRoute(t, uo)
	resp, body := get(t, "http://"+addr+"/")
	if resp.StatusCode != 502 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp.Header.Get("Server") != "edgeproxy" {
		t.Errorf("Server = %q", resp.Header.Get("Server"))
	}
	if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "refused") || len(body) > 64 {
		t.Errorf("error body leaks internals or is long: %q", body)
	}
}

// resetAfterReading reads the request head, then resets the connection.
func resetAfterReading(hits *atomic.Int64) func(c net.Conn) {
	return func(c net.Conn) {
		if _, _, err := readRequestHead(c); err != nil {
			return
		}
		hits.Add(1)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
	}
}

func TestSentRequestIsRetriedOnlyWhenIdempotent(t *testing.T) {
	var resets atomic.Int64
	bad := rawUpstream(t, resetAfterReading(&resets))
	var rec recorder
	good := upstreamServer(t, rec.handler(nil))
	uo := testUpstreamOptions(bad, addrOf(good))
	uo.MaxFails = 0
	addr, _ := oneRoute(t, uo)

	for _, method := range []string{"GET", "PUT", "DELETE", "OPTIONS"} {
		for i := 0; i < 2; i++ { // round robin: one of the two starts on the bad server
			req, _ := http.NewRequest(method, "http://"+addr+"/x", strings.NewReader(""))
			resp, err := testClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s: status %d; idempotent requests are retried", method, resp.StatusCode)
			}
		}
	}
	var got502 bool
	for i := 0; i < 4; i++ {
		before := rec.count()
		resp, err := testClient.Post("http://"+addr+"/x", "text/plain", strings.NewReader("pay once"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 502 {
			got502 = true
			if rec.count() != before {
				t.Errorf("POST that reached a server was sent again")
			}
		}
	}
	if !got502 {
		t.Errorf("POST was never answered 502 after a reset: retried when it must not be")
	}
}

func TestResponseTimeoutGives504WithinTimeout(t *testing.T) {
	up := rawUpstream(t, func(c net.Conn) {
		readRequestHead(c)
		neverAnswer(c)
	})
	uo := testUpstreamOptions(up)
	uo.ResponseTimeout = 300 * time.Millisecond
	addr, _ := oneRoute(t, uo)
	start := time.Now()
	resp, _ := get(t, "http://"+addr+"/")
	took := time.Since(start)
	if resp.StatusCode != 504 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if took < 250*time.Millisecond || took > time.Second {
		t.Errorf("504 after %v; response_timeout is 300ms", took)
	}
}

func TestRouteTimeoutOverridesUpstream(t *testing.T) {
	up := rawUpstream(t, func(c net.Conn) {
		readRequestHead(c)
		neverAnswer(c)
	})
	o := testOptions()
	o.Upstreams["up"] = testUpstreamOptions(up)
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up", Timeout: 200 * time.Millisecond}}
	addr, _ := startProxy(t, o)
	start := time.Now()
	resp, _ := get(t, "http://"+addr+"/")
	if resp.StatusCode != 504 || time.Since(start) > time.Second {
		t.Errorf("status %d after %v; route timeout 200ms", resp.StatusCode, time.Since(start))
	}
}

// A slow body is not a slow response: once the response started, only the
// gap between reads is bounded.
func TestSlowBodyLongerThanTimeoutStreams(t *testing.T) {
	up := rawUpstream(t, func(c net.Conn) {
		readRequestHead(c)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
		for i := 0; i < 10; i++ {
			time.Sleep(60 * time.Millisecond)
			c.Write([]byte("x"))
		}
	})
	uo := testUpstreamOptions(up)
	uo.ResponseTimeout = 200 * time.Millisecond
	addr, _ := oneRoute(t, uo)
	resp, body := get(t, "http://"+addr+"/")
	if resp.StatusCode != 200 || body != "xxxxxxxxxx" {
		t.Errorf("status %d body %q", resp.StatusCode, body)
	}
}

func TestUpstreamClosingMidBodyCutsClientConnection(t *testing.T) {
	up := rawUpstream(t, func(c net.Conn) {
		readRequestHead(c)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
		c.Write(make([]byte, 5000))
	})
	addr, _ := oneRoute(t, testUpstreamOptions(up))
	out := rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	// Either nothing (cut before the first byte), a 502, or the start of
	// the 200 and then a cut: never a complete response of the wrong length.
	switch {
	case out == "", strings.HasPrefix(out, "HTTP/1.1 502"):
	case strings.HasPrefix(out, "HTTP/1.1 200"):
		head, body, _ := strings.Cut(out, "\r\n\r\n")
		if !strings.Contains(head, "Content-Length: 100000") || len(body) >= 100000 {
			t.Errorf("client got %d body bytes of 100000 and the connection ended: want a short read", len(body))
		}
	default:
		t.Errorf("got %.100q", out)
	}
}

func TestChunkedAndNoBodyResponses(t *testing.T) {
	up := pathUpstream(t, func(c net.Conn, path string) bool {
		switch path {
		case "/chunked":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
		case "/204":
			io.WriteString(c, "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n")
		case "/304":
			io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n")
		case "/head":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/plain\r\n\r\n")
		case "/close":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close")
			return false
		}
		return true
	})
	addr, _ := oneRoute(t, testUpstreamOptions(up))

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	do := func(method, path string) (*http.Response, string) {
		io.WriteString(c, method+" "+path+" HTTP/1.1\r\nHost: h\r\n\r\n")
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	// All on one client connection: framing errors would desync it.
	if resp, body := do("GET", "/chunked"); resp.StatusCode != 200 || body != "hello world" {
		t.Errorf("chunked: %d %q", resp.StatusCode, body)
	}
	if resp, body := do("GET", "/204"); resp.StatusCode != 204 || body != "" || resp.Header.Get("X-A") != "1" {
		t.Errorf("204: %d %q", resp.StatusCode, body)
	}
	if resp, body := do("GET", "/304"); resp.StatusCode != 304 || body != "" || resp.Header.Get("ETag") != `"v1"` {
		t.Errorf("304: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp, body := do("HEAD", "/head"); resp.StatusCode != 200 || body != "" || resp.ContentLength != 1234 {
		t.Errorf("HEAD: %d %q length %d", resp.StatusCode, body, resp.ContentLength)
	}
	if resp, body := do("GET", "/close"); resp.StatusCode != 200 || body != "until close" {
		t.Errorf("close-delimited: %d %q", resp.StatusCode, body)
	}
	if resp, body := do("GET", "/chunked"); resp.StatusCode != 200 || body != "hello world" {
		t.Errorf("after close-delimited: %d %q", resp.StatusCode, body)
	}
}

func TestPassiveHealthTakesServerOutAndActiveCheckBringsItBack(t *testing.T) {
	var healthy atomic.Bool
	var badHits atomic.Int64
	flaky := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if healthy.Load() {
				w.WriteHeader(200)
			} else {
				w.WriteHeader(503)
			}
			return
		}
		badHits.Add(1)
		if !healthy.Load() {
			// A failure: close without answering.
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Close()
			return
		}
		io.WriteString(w, "flaky")
	})
	good := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "good") })
	uo := testUpstreamOptions(addrOf(flaky), addrOf(good))
	uo.MaxFails = 2
	uo.FailTimeout = time.Minute
	uo.HealthPath = "/healthz"
	uo.HealthInterval = 100 * time.Millisecond
	healthy.Store(true)
	addr, _ := oneRoute(t, uo)

	healthy.Store(false)
	// Wait until the flaky server is out, by failures or by checks.
	for i := 0; i < 20; i++ {
		get(t, "http://"+addr+"/")
	}
	before := badHits.Load()
	for i := 0; i < 10; i++ {
		if resp, body := get(t, "http://"+addr+"/"); resp.StatusCode != 200 || body != "good" {
			t.Fatalf("while flaky is out: %d %q", resp.StatusCode, body)
		}
	}
	if badHits.Load() != before {
		t.Errorf("a server taken out still received %d requests", badHits.Load()-before)
	}
	healthy.Store(true)
	if !waitFor(t, func() bool { _, b := get(t, "http://"+addr+"/"); return b == "flaky" }, 3*time.Second) {
		t.Errorf("active check did not bring the server back")
	}
}

func TestPassiveHealthWithoutActiveChecksExpires(t *testing.T) {
	var hits atomic.Int64
	bad := rawUpstream(t, resetAfterReading(&hits))
	now := time.Now()
	var offset atomic.Int64
	o := testOptions()
	o.Now = func() time.Time { return now.Add(time.Duration(offset.Load())) }
	uo := testUpstreamOptions(bad)
	uo.MaxFails = 2
	uo.FailTimeout = 10 * time.Second
	uo.Retries = 0
	o.Upstreams["up"] = uo
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
	addr, _ := startProxy(t, o)
	get(t, "http://"+addr+"/")
	get(t, "http://"+addr+"/")
	n := hits.Load()
	start := time.Now()
	resp, _ := get(t, "http://"+addr+"/")
	if resp.StatusCode != 502 || hits.Load() != n || time.Since(start) > time.Second {
		t.Errorf("all servers down: status %d, server hit %d more times, took %v; want a fast 502 without trying", resp.StatusCode, hits.Load()-n, time.Since(start))
	}
	offset.Store(int64(11 * time.Second))
	get(t, "http://"+addr+"/")
	if hits.Load() == n {
		t.Errorf("server not tried again after fail_timeout")
	}
}

func TestLeastConnPrefersIdleServer(t *testing.T) {
	release := make(chan struct{})
	var slowHits, fastHits atomic.Int64
	slow := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		slowHits.Add(1)
		<-release
	})
	fast := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) { fastHits.Add(1) })
	uo := testUpstreamOptions(addrOf(slow), addrOf(fast))
	uo.Balance = LeastConn
	addr, _ := oneRoute(t, uo)
	defer close(release)
	// Occupy the slow server with requests until one is in flight there.
	for i := 0; i < 4 && slowHits.Load() == 0; i++ {
		go fetch("http://" + addr + "/")
		waitFor(t, func() bool { return slowHits.Load() > 0 }, 200*time.Millisecond)
	}
	if slowHits.Load() == 0 {
		t.Fatal("slow server never got a request")
	}
	f0 := fastHits.Load()
	for i := 0; i < 10; i++ {
		get(t, "http://"+addr+"/")
	}
	if fastHits.Load()-f0 != 10 {
		t.Errorf("least_conn sent %d of 10 to the idle server", fastHits.Load()-f0)
	}
}

func TestRoundRobinSpreadsEvenly(t *testing.T) {
	var a, b atomic.Int64
	sa := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) { a.Add(1) })
	sb := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) { b.Add(1) })
	addr, _ := oneRoute(t, testUpstreamOptions(addrOf(sa), addrOf(sb)))
	for i := 0; i < 20; i++ {
		get(t, "http://"+addr+"/")
	}
	if a.Load() != 10 || b.Load() != 10 {
		t.Errorf("round robin: %d / %d", a.Load(), b.Load())
	}
}

// blackholeListener returns an address whose accept queue is full, so a
// new connection neither succeeds nor is refused: the SYN goes unanswered.
func blackholeListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue; it is never accepted from.
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

func TestConnectTimeoutGives502WithinTimeout(t *testing.T) {
	uo := testUpstreamOptions(blackholeListener(t))
	uo.ConnectTimeout = 300 * time.Millisecond
	uo.Retries = 0
	addr, _ := oneRoute(t, uo)
	start := time.Now()
	resp, _ := get(t, "http://"+addr+"/")
	took := time.Since(start)
	if resp.StatusCode != 502 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if took < 250*time.Millisecond || took > 1500*time.Millisecond {
		t.Errorf("502 after %v; connect_timeout is 300ms", took)
	}
}

// TestReloadKeepsUnchangedPools: a reload that leaves an upstream as it was
// keeps its pool, so its servers see no new connections; a changed one is
// rebuilt and the old pool closed.
func TestReloadKeepsUnchangedPools(t *testing.T) {
	var conns atomic.Int64
	up := httptestServerWithConnState(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }, &conns)
	o := testOptions()
	o.Upstreams["up"] = testUpstreamOptions(up)
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
	addr, s := startProxy(t, o)
	for i := 0; i < 10; i++ {
		get(t, "http://"+addr+"/")
	}
	before := conns.Load()
	pool := s.state.Load().upstreams["up"]
	for i := 0; i < 5; i++ {
		o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up", Name: fmt.Sprint("r", i)}}
		if err := s.Reload(o); err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 10; j++ {
			get(t, "http://"+addr+"/")
		}
	}
	if s.state.Load().upstreams["up"] != pool || conns.Load() != before {
		t.Errorf("unchanged upstream rebuilt: %d new connections", conns.Load()-before)
	}
	changed := testUpstreamOptions(up)
	changed.Retries = 2
	o.Upstreams["up"] = changed
	if err := s.Reload(o); err != nil {
		t.Fatal(err)
	}
	if s.state.Load().upstreams["up"] == pool {
		t.Errorf("changed upstream kept its old pool")
	}
	if n := pool.set.Load().servers[0].hc.ConnsCount(); n != 0 {
		t.Errorf("old pool still holds %d connections", n)
	}
}
