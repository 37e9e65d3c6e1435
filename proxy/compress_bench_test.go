package proxy

import (
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
	o := testOptions()
	o.Compression = compressionOn()
	o.Routes = []RouteOptions{
		{PathPrefix: "/", Upstream: "up", Compress: true},
		{PathPrefix: "/fixed", Return: 200, Body: string(body), ContentType: "application/json", Compress: true},
	}
	al, _ := NewAccessLog(AccessLogOptions{Path: "/dev/null", BufferSize: 256 << 10, FlushInterval: time.Second})
	o.AccessLog = al
	o.Metrics = NewMetrics(prometheus.NewRegistry())
	var fields []string
	if ae != "" {
		fields = []string{"Accept-Encoding", ae}
	}
	checkCoding := func(r *fasthttp.Response) {
		if got := r.Header.ContentEncoding(); string(got) != codingName(ae) {
			t.Fatalf("Content-Encoding %q, want %q", got, codingName(ae))
		}
	}
	drive, stopDirect := directHandler(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}, o, checkCoding, path, fields...)
	serve = func() int {
		status, n := drive()
		if status != 200 {
			t.Fatalf("status %d", status)
		}
		return n
	}
	return serve, func() { stopDirect(); al.Close() }
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
