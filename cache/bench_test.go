package cache

import (
	"net"
	"os"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/edgeproxy/edgeproxy/coupon"
	"github.com/edgeproxy/edgeproxy/internal/redistest"
)

// benchHandler is the coupon handler over a hot Store filled from a
// private Redis with the bundled sample.
func benchHandler(b *testing.B) *coupon.Handler {
	r := redistest.Start(b)
	o := testOptions(r.Addr)
	w, err := NewWriter(o)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	f, err := os.Open("../testdata/coupons.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := coupon.ReadJSONL(f, func(_ int, c coupon.Coupon, err error) error {
		if err != nil {
			return err
		}
		return w.Put(b.Context(), c)
	}); err != nil {
		b.Fatal(err)
	}
	s, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return coupon.NewHandler(s, coupon.Options{PathPrefix: "/coupons", Precision: 5,
		Limits: coupon.Limits{DefaultRadiusM: 2000, MaxRadiusM: 20000, DefaultLimit: 20, MaxLimit: 100}})
}

func benchmarkCoupon(b *testing.B, uri string) {
	h := benchHandler(b)
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request
	req.SetRequestURI(uri)
	req.Header.SetHost("edge.test")
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, nil)
	serve := func(want string) {
		h.Serve(&ctx)
		if ctx.Response.StatusCode() != 200 || (want != "" && string(ctx.Response.Header.Peek("X-Cache")) != want) {
			b.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Header.Peek("X-Cache"))
		}
		ctx.Response.Reset()
	}
	serve("") // fills L0, L1 and L2
	serve("HIT")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		serve("HIT")
	}
}

// BenchmarkCouponByIDHot: a by-id answer from L1 (bigcache).
func BenchmarkCouponByIDHot(b *testing.B) { benchmarkCoupon(b, "/coupons/tky-00001") }

// BenchmarkCouponNearbyHot: a nearby answer over about 210 candidates from
// L0 (decoded cells), as make bench measures it.
func BenchmarkCouponNearbyHot(b *testing.B) {
	benchmarkCoupon(b, "/coupons/nearby?lat=35.681&lon=139.767&radius_m=700")
}
