package proxy

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// FuzzProxyRequest sends arbitrary bytes as a request through the proxy.
// Whatever comes in, the proxy must answer or close without crashing, and
// the upstream must only ever see an unambiguous request: no hop-by-hop
// fields, no Content-Length beside Transfer-Encoding, only token names.
func FuzzProxyRequest(f *testing.F) {
	seeds := []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a/../b?x=%20 HTTP/1.1\r\nHost: h\r\nConnection: x-a, keep-alive\r\nX-A: 1\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
		"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET http://h/x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nTE: trailers\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\n\n",
		"GET /a? HTTP/1.1\r\nhost: h\r\ncookie: a=1\r\nUser-Agent: u\r\nCookie: b=2\r\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}

	var mu sync.Mutex
	var violation string
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	up := &fasthttp.Server{
		DisableHeaderNamesNormalizing: true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			var cl, te bool
			for k := range ctx.Request.Header.AllInOrder() {
				switch {
				case isHopByHop(k) && !bytes.EqualFold(k, hTransferEncoding):
					mu.Lock()
					violation = "hop-by-hop field " + string(k) + " forwarded"
					mu.Unlock()
				case !isToken(k):
					mu.Lock()
					violation = "field name " + string(k) + " forwarded"
					mu.Unlock()
				case bytes.EqualFold(k, hContentLength):
					cl = true
				case bytes.EqualFold(k, hTransferEncoding):
					te = true
				}
			}
			if cl && te {
				mu.Lock()
				violation = "Content-Length and Transfer-Encoding both forwarded"
				mu.Unlock()
			}
			ctx.SetBodyString("ok")
		},
	}
	go up.Serve(upLn)
	defer up.Shutdown()

	o := testOptions()
	o.ReadTimeout = 200 * time.Millisecond
	o.Upstreams["up"] = testUpstreamOptions(upLn.Addr().String())
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
	addr, _ := startProxy(f, o)

	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		c.Write(raw)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		out, err := io.ReadAll(c)
		if err != nil && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("no answer and no close within 2s: %v (got %q)", err, out)
		}
		if len(out) > 0 && !bytes.HasPrefix(out, []byte("HTTP/1.1 ")) {
			t.Fatalf("answer is not HTTP/1.1: %q", out)
		}
		mu.Lock()
		defer mu.Unlock()
		if violation != "" {
			v := violation
			violation = ""
			t.Fatalf("%s, for %q", v, raw)
		}
	})
}
