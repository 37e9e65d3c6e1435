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

// TestRequestArrivingDuringAnotherIsRead: a request that arrives while the
// previous one is being answered is read, not waited for.
func TestRequestArrivingDuringAnotherIsRead(t *testing.T) {
	arrived := make(chan struct{}, 2)
	release := make(chan struct{})
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		if r.URL.Path == "/first" {
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
			_ = k.c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprint(k.c, "GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
			<-arrived // the proxy read the first request and waits on it
			// On loopback the write has put the bytes in the proxy's
			// socket by the time it returns.
			fmt.Fprint(k.c, "GET /second HTTP/1.1\r\nHost: h\r\n\r\n")
			release <- struct{}{}
			for _, want := range []string{"/first", "/second"} {
				resp, err := http.ReadResponse(k.br, nil)
				if err != nil {
					t.Fatalf("%s: %v", want, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != want {
					t.Fatalf("got %q, want %q", b, want)
				}
			}
			<-arrived
		})
	}
}

// TestShutdownClosesIdleConnections: fasthttp's shutdown closes an idle
// connection from its own goroutine while the connection's Read waits;
// the close does not wait for long, and leaves no socket open.
func TestShutdownClosesIdleConnections(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors in /proc/self/fd")
	}
	fds := func() int {
		ents, _ := os.ReadDir("/proc/self/fd")
		return len(ents)
	}
	o := testOptions()
	o.ParkIdleAfter = -1 // the idle connection stays with fasthttp
	o.Routes = []RouteOptions{{PathPrefix: "/", Return: 200, Body: "ok"}}
	before := fds()
	addr, s := startProxy(t, o)
	k := dialKeepAlive(t, addr)
	if code, _ := k.get(t, "/"); code != 200 {
		t.Fatal(code)
	}
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
	// Left: the server's socket, its listener (closed by Shutdown) and the
	// client's socket, all closed; the poll set was never opened.
	if !waitFor(t, func() bool { return fds() <= before }, 5*time.Second) {
		t.Errorf("%d descriptors open, %d before", fds(), before)
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
