package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// testUpstreamOptions are quick defaults for tests.
func testUpstreamOptions(servers ...string) UpstreamOptions {
	return UpstreamOptions{
		Servers:           servers,
		Balance:           RoundRobin,
		MaxConnsPerServer: 64,
		MaxIdleTime:       30 * time.Second,
		ConnectTimeout:    time.Second,
		ResponseTimeout:   5 * time.Second,
		ConnWaitTimeout:   200 * time.Millisecond,
		Retries:           1,
		Host:              HostPreserve,
		MaxFails:          3,
		FailTimeout:       10 * time.Second,
		HealthInterval:    time.Second,
		HealthTimeout:     time.Second,
	}
}

func testOptions() Options {
	return Options{
		ReadTimeout:     5 * time.Second,
		WriteTimeout:    5 * time.Second,
		IdleTimeout:     30 * time.Second,
		MaxHeaderBytes:  16 << 10,
		MaxConns:        1000,
		ShutdownTimeout: 5 * time.Second,
		MaxBodyBytes:    8 << 20,
		BufferBodyBytes: 64 << 10,
		Upstreams:       map[string]UpstreamOptions{},
	}
}

// startProxy serves o on a loopback port and returns its address.
func startProxy(t testing.TB, o Options) (string, *Server) {
	t.Helper()
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String(), s
}

// upstream starts a real net/http server on loopback.
func upstreamServer(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func addrOf(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "http://") }

// oneRoute is a proxy with one upstream "up" at "/" .
func oneRoute(t testing.TB, uo UpstreamOptions) (string, *Server) {
	o := testOptions()
	o.Upstreams["up"] = uo
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
	return startProxy(t, o)
}

// rawExchange writes raw to addr and returns everything read until the
// server closes or the deadline passes.
func rawExchange(t testing.TB, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

// rawResponse sends one request on a new connection and parses one response.
func rawResponse(t testing.TB, addr, raw string, method string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func get(t testing.TB, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

var testClient = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// recorded is what an upstream saw of one request.
type recorded struct {
	method, uri, host, proto string
	header                   http.Header
	body                     string
}

// recorder is an upstream handler that records requests.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

func (r *recorder) handler(reply func(w http.ResponseWriter)) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, recorded{req.Method, req.RequestURI, req.Host, req.Proto, req.Header.Clone(), string(b)})
		r.mu.Unlock()
		if reply != nil {
			reply(w)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}
}

func (r *recorder) last(t testing.TB) recorded {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		t.Fatal("upstream received nothing")
	}
	return r.reqs[len(r.reqs)-1]
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// pathUpstream is a raw keep-alive upstream: answer writes the answer to
// each request on a connection, by path, and returns false to close it.
func pathUpstream(t testing.TB, answer func(c net.Conn, path string) bool) string {
	t.Helper()
	return rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil || !answer(c, req.URL.Path) {
				return
			}
		}
	})
}

// rawUpstream serves each accepted connection with fn, for upstreams that
// misbehave in ways net/http will not.
func rawUpstream(t testing.TB, fn func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fn(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// neverAnswer holds an upstream connection without answering until the
// proxy gives up on it and closes it (at most 5 s), so the test's cleanup,
// which waits for rawUpstream's handlers, waits no longer than the proxy.
func neverAnswer(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, c)
}

// readRequestHead reads up to the end of a request's headers.
func readRequestHead(c net.Conn) (*http.Request, *bufio.Reader, error) {
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	return req, br, err
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
