package proxy

import (
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

// TestHeldReadSeesBytesThatCameDuringARequest: a held Read that finds the
// socket emptied by the last read waits for the poller without reading
// first (heldRead); a request that arrived while the previous one was
// being answered must still be read, not waited for.
func TestHeldReadSeesBytesThatCameDuringARequest(t *testing.T) {
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
			for _, p := range []string{"/1", "/2", "/3"} { // reads are held from the second answer on
				k.get(t, p)
				<-arrived
			}
			_ = k.c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprint(k.c, "GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
			<-arrived // the proxy read the first request and waits on it
			fmt.Fprint(k.c, "GET /second HTTP/1.1\r\nHost: h\r\n\r\n")
			time.Sleep(20 * time.Millisecond) // let the second land in the socket; not a synchronisation
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

// TestShutdownClosesIdleConnectionUnderHeldRead: fasthttp's shutdown
// closes an idle connection from its own goroutine while the
// connection's Read waits in its coroutine; the close must neither wait
// for that Read nor leave the socket open after the reader lets go.
func TestShutdownClosesIdleConnectionUnderHeldRead(t *testing.T) {
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

// TestHalfClosingClientGetsTheClose: a client that half-closes after its
// last request gets the answer and then the proxy's close at once, however
// the FIN came: with the request's bytes on a new connection, after
// earlier requests (the poll set already watches the socket), with a
// request that arrived while the one before was answered, or behind a
// body sent in two parts. The FIN may come under the same readiness as
// the last bytes, which a held wait would never see without the poll
// set's report (peerclose.go). Reads are held from a connection's second
// answer on; the first request is read plainly. Sweeps are an hour apart, so parking,
// which would also find the FIN, cannot hide a hang.
func TestHalfClosingClientGetsTheClose(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s%s", r.URL.Path, b)
	})
	for _, parkAtOnceAbove := range []int{0, -1} {
		o := testOptions()
		o.ParkIdleAfter = time.Hour
		o.ParkAtOnceAbove = parkAtOnceAbove
		o.Upstreams["up"] = testUpstreamOptions(addrOf(up))
		o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
		addr, _ := startProxy(t, o)
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
				time.Sleep(20 * time.Millisecond) // let the FIN land before the proxy reads; not a synchronisation
				release <- struct{}{}
			}, []string{"/slow", "/c"}},
			{"body in two parts", []string{"/1", "/2", "/3"}, func(t *testing.T, c net.Conn) {
				fmt.Fprint(c, "POST /d HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01234")
				time.Sleep(20 * time.Millisecond) // let the proxy wait for the rest; not a synchronisation
				fmt.Fprint(c, "56789")
			}, []string{"/d0123456789"}},
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/ParkAtOnceAbove=%d", tc.name, parkAtOnceAbove), func(t *testing.T) {
				k := dialKeepAlive(t, addr)
				for _, p := range tc.before {
					if code, body := k.get(t, p); code != 200 || body != p {
						t.Fatalf("%s: %d %q", p, code, body)
					}
				}
				_ = k.c.SetDeadline(time.Now().Add(5 * time.Second))
				tc.send(t, k.c)
				k.c.(*net.TCPConn).CloseWrite()
				for _, want := range tc.want {
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
				_ = k.c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := k.br.ReadByte(); err != io.EOF {
					t.Fatalf("after the last answer: %v, want the proxy's close (EOF)", err)
				}
			})
		}
	}
}
