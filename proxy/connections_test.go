package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"testing"
	"time"
)

// warmUp makes the requests after which a client connection's reads are
// held (from the wait after its second answer on, peerclose.go).
func warmUp(t *testing.T, k *keepAliveClient, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if code, body := k.get(t, p); code != 200 || body != p {
			t.Fatalf("%s: %d %q", p, code, body)
		}
	}
}

// TestRequestArrivingDuringAnotherIsRead: a request that arrives while the
// previous one is being answered is read, not waited for: a held Read that
// finds the socket emptied by the last read waits for the poller without
// reading first (heldRead), and must not lose what came meanwhile.
func TestRequestArrivingDuringAnotherIsRead(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/first" {
			arrived <- struct{}{}
			<-release
		}
		fmt.Fprint(w, r.URL.Path)
	})
	for _, park := range []time.Duration{-1, 0} {
		t.Run(fmt.Sprintf("ParkIdleAfter=%v", park), func(t *testing.T) {
			o := testOptions()
			o.ParkIdleAfter = park
			o.Upstreams["up"] = testUpstreamOptions(addrOf(up))
			o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
			addr, _ := startProxy(t, o)
			k := dialKeepAlive(t, addr)
			warmUp(t, k, "/1", "/2", "/3")
			_ = k.c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprint(k.c, "GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
			<-arrived // the proxy read the first request and waits on it
			// On loopback the write has put the bytes in the proxy's
			// socket by the time it returns.
			fmt.Fprint(k.c, "GET /second HTTP/1.1\r\nHost: h\r\n\r\n")
			release <- struct{}{}
			k.answers(t, "/first", "/second")
		})
	}
}

// TestShutdownClosesIdleConnections: fasthttp's shutdown closes an idle
// connection from its own goroutine while the connection's Read waits,
// plain or held in its coroutine; the close does not wait for that Read,
// and leaves no socket open once the reader lets go.
func TestShutdownClosesIdleConnections(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors in /proc/self/fd")
	}
	fds := func() int {
		ents, _ := os.ReadDir("/proc/self/fd")
		return len(ents)
	}
	for _, tc := range []struct {
		name string
		park time.Duration
		warm []string
	}{
		{"parking off, plain reads", -1, []string{"/"}},
		// Sweeps an hour apart: the idle connection stays with fasthttp.
		{"held reads", time.Hour, []string{"/", "/", "/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions()
			o.ParkIdleAfter = tc.park
			o.Routes = []RouteOptions{{PathPrefix: "/", Return: 200, Body: "/"}}
			before := fds()
			addr, s := startProxy(t, o)
			k := dialKeepAlive(t, addr)
			warmUp(t, k, tc.warm...)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			if err := s.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("shutdown took %v", took)
			}
			_ = k.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := k.br.ReadByte(); err != io.EOF {
				t.Errorf("idle connection after shutdown: %v, want EOF", err)
			}
			k.c.Close()
			// Left: the server's socket, its listener and poll set (closed
			// by Shutdown) and the client's socket, all closed.
			if !waitFor(t, func() bool { return fds() <= before }, 5*time.Second) {
				t.Errorf("%d descriptors open, %d before", fds(), before)
			}
		})
	}
}

// The upstream side reads held (heldRead): a pooled connection's coroutine
// waits inside the poller between requests.

// TestPooledUpstreamConnectionClosedWhenIdle: fasthttp's cleaner closes an
// idle pooled connection from its own goroutine; the upstream sees it
// closed.
func TestPooledUpstreamConnectionClosedWhenIdle(t *testing.T) {
	closed := make(chan struct{}, 1)
	up := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				closed <- struct{}{}
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	uo := testUpstreamOptions(up)
	uo.MaxIdleTime = 100 * time.Millisecond
	addr, _ := oneRoute(t, uo)
	if code, _ := dialKeepAlive(t, addr).get(t, "/"); code != 200 {
		t.Fatal(code)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the idle upstream connection was not closed")
	}
}

// TestUpstreamClosingAfterAnAnswer: an upstream that closes a kept-alive
// connection, at once after its answer (the FIN may come under the same
// readiness as the answer's last bytes) or a while later, with a FIN or a
// reset, costs the next request neither a hang nor an error: the request
// written into the closed connection draws a reset, or finds one, and is
// sent again on a new connection.
func TestUpstreamClosingAfterAnAnswer(t *testing.T) {
	for _, tc := range []struct {
		after time.Duration
		reset bool
	}{{0, false}, {50 * time.Millisecond, false}, {0, true}, {50 * time.Millisecond, true}} {
		t.Run(fmt.Sprintf("after=%v,reset=%v", tc.after, tc.reset), func(t *testing.T) {
			closed := make(chan struct{}, 8)
			up := rawUpstream(t, func(c net.Conn) {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				time.Sleep(tc.after)
				if tc.reset {
					c.(*net.TCPConn).SetLinger(0)
				}
				c.Close()
				closed <- struct{}{}
			})
			addr, _ := oneRoute(t, testUpstreamOptions(up))
			k := dialKeepAlive(t, addr)
			for i := 0; i < 3; i++ {
				start := time.Now()
				if code, body := k.get(t, "/"); code != 200 || body != "ok" {
					t.Fatalf("request %d: %d %q", i, code, body)
				}
				if took := time.Since(start); took > 2*time.Second {
					t.Fatalf("request %d took %v", i, took)
				}
				select { // the next request goes to a connection the upstream closed
				case <-closed:
				case <-time.After(5 * time.Second):
					t.Fatalf("request %d: the upstream did not close", i)
				}
			}
		})
	}
}

// TestHalfClosingClientGetsTheClose: a client that half-closes after its
// last request gets the answer and then the proxy's close at once, however
// the FIN came: with the request's bytes on a new connection, after
// earlier requests (the poll set already watches the socket), with a
// request that arrived while the one before was answered, or behind a
// body sent in two parts. The FIN may come under the same readiness as
// the last bytes, which a held wait would never see without the poll
// set's report (peerclose.go). The first request is read plainly (see
// warmUp). Sweeps are an hour apart, so parking, which would also find
// the FIN, cannot hide a hang.
func TestHalfClosingClientGetsTheClose(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			arrived <- struct{}{}
			<-release
		case "/d": // its head is here; the rest of its body is not
			arrived <- struct{}{}
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s%s", r.URL.Path, b)
	})
	for _, parkAtOnceAbove := range []int{0, -1} {
		o := testOptions()
		o.ParkIdleAfter = time.Hour
		o.ParkAtOnceAbove = parkAtOnceAbove
		o.Upstreams["up"] = testUpstreamOptions(addrOf(up))
		o.Routes = []RouteOptions{
			{PathPrefix: "/d", Upstream: "up", StreamRequestBody: true},
			{PathPrefix: "/", Upstream: "up"},
		}
		addr, _ := startProxy(t, o)
		// On loopback a write or CloseWrite has put its bytes or FIN in
		// the proxy's socket by the time it returns.
		cases := []struct {
			name   string
			before []string // requests answered first
			send   func(t *testing.T, c net.Conn)
			want   []string
		}{
			{"first request", nil, func(t *testing.T, c net.Conn) {
				fmt.Fprint(c, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
			}, []string{"/a"}},
			{"after requests", []string{"/1", "/2"}, func(t *testing.T, c net.Conn) {
				fmt.Fprint(c, "GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
			}, []string{"/b"}},
			// The poll set watches the socket from the wait after /3 on.
			{"arriving during a request", []string{"/1", "/2", "/3"}, func(t *testing.T, c net.Conn) {
				fmt.Fprint(c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
				<-arrived
				fmt.Fprint(c, "GET /c HTTP/1.1\r\nHost: h\r\n\r\n")
				c.(*net.TCPConn).CloseWrite()
				release <- struct{}{}
			}, []string{"/slow", "/c"}},
			{"body in two parts", []string{"/1", "/2", "/3"}, func(t *testing.T, c net.Conn) {
				// Chunked: a streamed Content-Length body this small is
				// read whole before it is forwarded.
				fmt.Fprint(c, "POST /d HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n")
				<-arrived // forwarded: the proxy waits for the rest
				fmt.Fprint(c, "5\r\n56789\r\n0\r\n\r\n")
			}, []string{"/d0123456789"}},
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/ParkAtOnceAbove=%d", tc.name, parkAtOnceAbove), func(t *testing.T) {
				k := dialKeepAlive(t, addr)
				warmUp(t, k, tc.before...)
				_ = k.c.SetDeadline(time.Now().Add(5 * time.Second))
				tc.send(t, k.c)
				k.c.(*net.TCPConn).CloseWrite()
				k.answers(t, tc.want...)
				_ = k.c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := k.br.ReadByte(); err != io.EOF {
					t.Fatalf("after the last answer: %v, want the proxy's close (EOF)", err)
				}
			})
		}
	}
}
