package proxy

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// compressHarness drives the proxy's handler directly, as the server
// does, for a 4 KiB JSON answer: from a fasthttp upstream on loopback
// (streamed) or a fixed answer (in memory), with Accept-Encoding ae.
func compressHarness(t testing.TB, path, ae string) (serve func() int, stop func()) {
	body := jsonBody(4096)
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upSrv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}}
	go upSrv.Serve(upLn)
	o := testOptions()
	o.Compression = compressionOn()
	o.Upstreams["up"] = testUpstreamOptions(upLn.Addr().String())
	o.Routes = []RouteOptions{
		{PathPrefix: "/", Upstream: "up", Compress: true},
		{PathPrefix: "/fixed", Return: 200, Body: string(body), ContentType: "application/json", Compress: true},
	}
	al, _ := NewAccessLog(AccessLogOptions{Path: "/dev/null", BufferSize: 256 << 10, FlushInterval: time.Second})
	o.AccessLog = al
	o.Metrics = NewMetrics(prometheus.NewRegistry())
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request
	req.Header.DisableNormalizing()
	req.SetRequestURI(path)
	req.Header.SetHost("edge.test")
	if ae != "" {
		req.Header.Set("Accept-Encoding", ae)
	}
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, nil)
	serve = func() int {
		s.handle(&ctx)
		if ctx.Response.StatusCode() != 200 {
			t.Fatalf("status %d", ctx.Response.StatusCode())
		}
		// What the server does after the handler: write and close the body.
		n := len(ctx.Response.Body())
		if ctx.Response.IsBodyStream() {
			m, _ := io.Copy(io.Discard, ctx.Response.BodyStream())
			n = int(m)
		}
		if got := ctx.Response.Header.ContentEncoding(); string(got) != codingName(ae) {
			t.Fatalf("Content-Encoding %q, want %q", got, codingName(ae))
		}
		ctx.Response.Reset()
		return n
	}
	return serve, func() { upSrv.Shutdown(); al.Close() }
}

func codingName(ae string) string {
	if ae == "identity" {
		return ""
	}
	return ae
}

// TestCompressionAllocatesNothingPerResponse pins that compressing costs
// no allocation per response once the pools are warm: the handler
// allocates as much with compression as without.
func TestCompressionAllocatesNothingPerResponse(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	for _, path := range []string{"/api", "/fixed"} {
		plain, stopPlain := compressHarness(t, path, "identity")
		for i := 0; i < 50; i++ {
			plain()
		}
		base := testing.AllocsPerRun(300, func() { plain() })
		stopPlain()
		for _, enc := range []string{"gzip", "br", "zstd"} {
			serve, stop := compressHarness(t, path, enc)
			for i := 0; i < 50; i++ {
				serve()
			}
			allocs := testing.AllocsPerRun(300, func() { serve() })
			stop()
			t.Logf("%s %s: %.1f allocations per response (identity: %.1f)", path, enc, allocs, base)
			if allocs > base {
				t.Errorf("%s %s: %.1f allocations per response, identity %.1f: compressing allocates", path, enc, allocs, base)
			}
		}
	}
}

// BenchmarkCompression is one 4 KiB JSON answer through the handler, per
// coding, streamed from an upstream and in memory.
func BenchmarkCompression(b *testing.B) {
	for _, path := range []string{"/api", "/fixed"} {
		for _, enc := range []string{"identity", "gzip", "br", "zstd"} {
			b.Run(path[1:]+"/"+enc, func(b *testing.B) {
				serve, stop := compressHarness(b, path, enc)
				defer stop()
				n := serve()
				b.ReportAllocs()
				b.ReportMetric(float64(n), "bytes/answer")
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					serve()
				}
			})
		}
	}
}
