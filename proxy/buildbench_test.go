package proxy

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkBuildUpstreamRequest is building the upstream request from a
// parsed client head and writing it, what HostClient does with it
// included (URI parse, Request.Write): the part of forwarding that byte
// fidelity changed. It runs unchanged on trees before that change.
func BenchmarkBuildUpstreamRequest(b *testing.B) {
	o := testOptions()
	o.Upstreams["up"] = testUpstreamOptions("127.0.0.1:1")
	o.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "up"}}
	s, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request
	req.Header.DisableNormalizing()
	raw := "GET /news/item?id=1 HTTP/1.1\r\nHost: edge.test\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: text/html\r\nAccept-Language: en-US,en;q=0.5\r\nCookie: session=0123456789abcdef\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
	if err := req.Header.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		b.Fatal(err)
	}
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, nil)
	st := s.state.Load()
	up := st.upstreams["up"]
	bw := bufio.NewWriter(io.Discard)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ex := s.exchanges.Get().(*exchange)
		ex.begin(&ctx, time.Time{})
		ex.st = st
		out := fasthttp.AcquireRequest()
		if s.buildUpstreamRequest(out, &ctx, ex, up) {
			b.Fatal("per attempt")
		}
		out.URI()
		if err := out.Write(bw); err != nil {
			b.Fatal(err)
		}
		fasthttp.ReleaseRequest(out)
		ex.reset()
		s.exchanges.Put(ex)
	}
}
