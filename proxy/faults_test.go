package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestUpstreamKilledMidResponseUnderLoad: clients downloading from an
// upstream that dies see either a whole response, a cut connection, or a
// 502 before the first byte — never a hang and never a short body that
// looks complete.
func TestUpstreamKilledMidResponseUnderLoad(t *testing.T) {
	const size = 4 << 20
	started := make(chan struct{}, 64)
	up := httptestKillable(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		started <- struct{}{}
		chunk := make([]byte, 32<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(2 * time.Millisecond)
		}
	})
	uo := testUpstreamOptions(up.addr)
	uo.ResponseTimeout = 2 * time.Second
	addr, _ := oneRoute(t, uo)

	const clients = 16
	type outcome struct {
		status int
		n      int64
		err    error
		took   time.Duration
	}
	results := make(chan outcome, clients)
	for i := 0; i < clients; i++ {
		go func() {
			start := time.Now()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				results <- outcome{err: err}
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				results <- outcome{err: err, took: time.Since(start)}
				return
			}
			n, err := io.Copy(io.Discard, resp.Body)
			results <- outcome{status: resp.StatusCode, n: n, err: err, took: time.Since(start)}
		}()
	}
	for i := 0; i < clients/2; i++ {
		<-started // half the downloads have their headers and are streaming
	}
	up.kill()

	for i := 0; i < clients; i++ {
		o := <-results
		switch {
		case o.took > 8*time.Second:
			t.Errorf("client hung for %v", o.took)
		case o.err == nil && o.status == 200 && o.n != size:
			t.Errorf("a 200 ended cleanly after %d of %d bytes", o.n, size)
		case o.err == nil && o.status != 200 && o.status != 502:
			t.Errorf("status %d", o.status)
		}
	}
}

// TestUpstreamThatNeverAnswersDoesNotStarveOthers: requests to a black
// hole get 504 at the timeout while another upstream keeps answering.
func TestUpstreamThatNeverAnswersDoesNotStarveOthers(t *testing.T) {
	hole := rawUpstream(t, func(c net.Conn) {
		readRequestHead(c)
		io.Copy(io.Discard, c) // holds the connection, answers nothing
	})
	good := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	o := testOptions()
	ho := testUpstreamOptions(hole)
	ho.ResponseTimeout = 400 * time.Millisecond
	ho.MaxConnsPerServer = 8
	ho.ConnWaitTimeout = 100 * time.Millisecond
	ho.Retries = 0
	o.Upstreams["hole"] = ho
	o.Upstreams["good"] = testUpstreamOptions(addrOf(good))
	o.Routes = []RouteOptions{{PathPrefix: "/hole", Upstream: "hole"}, {PathPrefix: "/", Upstream: "good"}}
	addr, _ := startProxy(t, o)

	var wg sync.WaitGroup
	var gotTimeout, gotOther atomic.Int64
	var slowest atomic.Int64
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			resp, err := testClient.Get("http://" + addr + "/hole")
			if err != nil {
				gotOther.Add(1)
				return
			}
			resp.Body.Close()
			if took := int64(time.Since(start)); took > slowest.Load() {
				slowest.Store(took)
			}
			switch resp.StatusCode {
			case 504, 502: // 502: no free connection within conn_wait_timeout
				gotTimeout.Add(1)
			default:
				gotOther.Add(1)
			}
		}()
	}
	var took []time.Duration
	for i := 0; i < 50; i++ {
		start := time.Now()
		resp, body := get(t, "http://"+addr+"/other")
		took = append(took, time.Since(start))
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("healthy upstream while the other hangs: %d %q", resp.StatusCode, body)
		}
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	// Not waiting on the black hole's 400 ms timeouts: the median is far
	// below them, and none waits longer than two of them.
	if took[len(took)/2] > 100*time.Millisecond || took[len(took)-1] > 800*time.Millisecond {
		t.Errorf("healthy upstream: median %v, slowest %v", took[len(took)/2], took[len(took)-1])
	}
	wg.Wait()
	if gotOther.Load() != 0 || gotTimeout.Load() != 40 {
		t.Errorf("black hole: %d gateway errors, %d other outcomes", gotTimeout.Load(), gotOther.Load())
	}
	if s := time.Duration(slowest.Load()); s > 2*time.Second {
		t.Errorf("slowest black-hole answer took %v; timeout 400ms", s)
	}
}

// TestAllServersDownFastWithoutConnectStorm: once passive health has taken
// every server out, a burst of requests is answered 502 at once and no
// connection is attempted.
func TestAllServersDownFastWithoutConnectStorm(t *testing.T) {
	var attempts atomic.Int64
	var servers []string
	for i := 0; i < 3; i++ {
		servers = append(servers, rawUpstream(t, func(c net.Conn) {
			attempts.Add(1)
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // reset: a failed attempt
			}
		}))
	}
	uo := testUpstreamOptions(servers...)
	uo.MaxFails = 1
	uo.FailTimeout = time.Minute
	uo.Retries = 2
	addr, _ := oneRoute(t, uo)
	get(t, "http://"+addr+"/") // takes every server out
	before := attempts.Load()
	if before == 0 {
		t.Fatal("no server was tried")
	}
	start := time.Now()
	var wg sync.WaitGroup
	var not502 atomic.Int64
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := testClient.Get("http://" + addr + "/")
			if err != nil || resp.StatusCode != 502 {
				not502.Add(1)
				return
			}
			resp.Body.Close()
		}()
	}
	wg.Wait()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("200 requests with every server down took %v", took)
	}
	if not502.Load() != 0 || attempts.Load() != before {
		t.Errorf("%d not 502; %d connection attempts after the servers were out", not502.Load(), attempts.Load()-before)
	}
}

// TestNoGoroutineLeakAfterFaults: after the fault tests' kinds of traffic,
// goroutines return to their level.
func TestNoGoroutineLeakAfterFaults(t *testing.T) {
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		io.WriteString(w, strings.Repeat("x", 100))
	})
	uo := testUpstreamOptions(addrOf(up))
	uo.ResponseTimeout = 100 * time.Millisecond
	addr, _ := oneRoute(t, uo)
	for i := 0; i < 20; i++ {
		get(t, "http://"+addr+"/")
		get(t, "http://"+addr+"/slow")
	}
	testClient.CloseIdleConnections()
	base := runtime.NumGoroutine()
	for round := 0; round < 3; round++ {
		for i := 0; i < 50; i++ {
			get(t, "http://"+addr+"/")
			get(t, "http://"+addr+"/slow")
		}
		testClient.CloseIdleConnections()
	}
	ok := waitFor(t, func() bool { return runtime.NumGoroutine() <= base+5 }, 3*time.Second)
	if !ok {
		t.Errorf("goroutines grew from %d to %d", base, runtime.NumGoroutine())
	}
}

// killable is an upstream whose connections can all be cut at once.
type killable struct {
	addr string
	srv  *http.Server
	mu   sync.Mutex
	cs   map[net.Conn]bool
}

func httptestKillable(t *testing.T, h http.HandlerFunc) *killable {
	k := &killable{cs: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k.addr = ln.Addr().String()
	k.srv = &http.Server{Handler: h, ConnState: func(c net.Conn, s http.ConnState) {
		k.mu.Lock()
		defer k.mu.Unlock()
		if s == http.StateNew {
			k.cs[c] = true
		}
	}}
	go k.srv.Serve(ln)
	t.Cleanup(func() { k.srv.Close() })
	return k
}

// kill closes the listener and resets every connection.
func (k *killable) kill() {
	k.mu.Lock()
	for c := range k.cs {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
	k.mu.Unlock()
	k.srv.Close()
}
