package proxy

import (
	"context"
	"fmt"
	"io"
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
