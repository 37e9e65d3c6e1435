package proxy

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/edgeproxy/edgeproxy/respcache"
)

// cacheHarness drives the handler directly for one route, with a
// response store and an upstream whose answers are fresh for an hour.
func cacheHarness(t testing.TB, ro RouteOptions) (serve func() int, stop func()) {
	st, err := respcache.New(respcache.Options{MaxBytes: 8 << 20, MaxEntryBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions()
	o.ResponseCache = st
	o.Metrics = NewMetrics(prometheus.NewRegistry())
	o.Routes = []RouteOptions{ro}
	drive, stopDirect := directHandler(t, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "max-age=3600")
		ctx.SetContentType("text/plain")
		ctx.SetBodyString("0123456789")
	}, o, nil, "/news/item?id=1", "Accept-Encoding", "gzip")
	serve = func() int {
		status, _ := drive()
		return status
	}
	return serve, func() { stopDirect(); st.Close() }
}

var (
	cachedRoute = RouteOptions{PathPrefix: "/", Upstream: "up", Cache: CacheOptions{Enabled: true, Key: "$scheme$host$request_uri", Lock: true, MaxBody: 1 << 20}}
	returnRoute = RouteOptions{PathPrefix: "/", Return: 200, Body: "0123456789"}
)

// TestCacheHitAllocations: a HIT allocates only inside bigcache v3.1.0's
// Get (the stored key read back for its collision check, and the entry's
// copy); everything of edgeproxy's own on the path allocates nothing, as
// on a fixed answer.
func TestCacheHitAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	hit, stop := cacheHarness(t, cachedRoute)
	defer stop()
	for i := 0; i < 100; i++ {
		hit()
	}
	ret, stop2 := cacheHarness(t, returnRoute)
	defer stop2()
	for i := 0; i < 100; i++ {
		ret()
	}
	hitAllocs := testing.AllocsPerRun(1000, func() { hit() })
	retAllocs := testing.AllocsPerRun(1000, func() { ret() })
	t.Logf("HIT %.1f allocs per request, return answer %.1f", hitAllocs, retAllocs)
	if hitAllocs > retAllocs+2 {
		t.Errorf("HIT allocates %.1f, a return answer %.1f: more than bigcache's two", hitAllocs, retAllocs)
	}
}

func BenchmarkCacheHit(b *testing.B) {
	serve, stop := cacheHarness(b, cachedRoute)
	defer stop()
	serve()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		serve()
	}
}

func BenchmarkReturnAnswer(b *testing.B) {
	serve, stop := cacheHarness(b, returnRoute)
	defer stop()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		serve()
	}
}
