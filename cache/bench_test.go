package cache

import (
	"net"
	"os"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/edgeproxy/edgeproxy/coupon"
	"github.com/edgeproxy/edgeproxy/internal/benchdata"
	"github.com/edgeproxy/edgeproxy/internal/redistest"
)

// benchHandler is the coupon handler over a hot Store filled from a
// private Redis with the bundled sample, or with the dense data set of
// the mixed searches (internal/benchdata).
func benchHandler(b *testing.B, dense bool) (*coupon.Handler, *Store) {
	r := redistest.Start(b)
	o := testOptions(r.Addr)
	w, err := NewWriter(o)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	put := func(_ int, c coupon.Coupon, err error) error {
		if err != nil {
			return err
		}
		return w.Put(b.Context(), c)
	}
	if dense {
		for i, line := range benchdata.Dense() {
			c, err := coupon.Parse(line)
			if err := put(i, c, err); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		f, err := os.Open("../testdata/coupons.jsonl")
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := coupon.ReadJSONL(f, put); err != nil {
			b.Fatal(err)
		}
	}
	s, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return coupon.NewHandler(s, coupon.Options{PathPrefix: "/coupons", Precision: 5,
		Limits: coupon.Limits{DefaultRadiusM: 2000, MaxRadiusM: 20000, DefaultLimit: 20, MaxLimit: 100}}), s
}

func benchmarkCoupon(b *testing.B, dense bool, uris ...string) {
	h, s := benchHandler(b, dense)
	ctxs := make([]fasthttp.RequestCtx, len(uris))
	reqs := make([]fasthttp.Request, len(uris))
	for i, uri := range uris {
		reqs[i].SetRequestURI(uri)
		reqs[i].Header.SetHost("edge.test")
		ctxs[i].Init(&reqs[i], &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, nil)
	}
	serve := func(ctx *fasthttp.RequestCtx, want string) {
		h.Serve(ctx)
		if ctx.Response.StatusCode() != 200 || (want != "" && string(ctx.Response.Header.Peek("X-Cache")) != want) {
			b.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Header.Peek("X-Cache"))
		}
		ctx.Response.Reset()
	}
	for i := range ctxs {
		serve(&ctxs[i], "") // fills L0, L1 and L2
	}
	for i := range ctxs {
		serve(&ctxs[i], "HIT")
	}
	misses := s.Stats.Misses.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		serve(&ctxs[i%len(ctxs)], "HIT")
	}
	b.StopTimer()
	b.Logf("l0 %d l1 %d l2 %d redis %d", s.Stats.L0Hits.Load(), s.Stats.L1Hits.Load(), s.Stats.L2Hits.Load(), s.Stats.Misses.Load())
	if m := s.Stats.Misses.Load() - misses; m > 0 {
		b.Fatalf("%d reads from Redis while hot", m)
	}
}

// BenchmarkCouponByIDHot: a by-id answer from L1 (bigcache).
func BenchmarkCouponByIDHot(b *testing.B) { benchmarkCoupon(b, false, "/coupons/tky-00001") }

// BenchmarkCouponNearbyHot: a nearby answer over about 210 candidates from
// L0 (decoded cells), as make bench measures it.
func BenchmarkCouponNearbyHot(b *testing.B) {
	benchmarkCoupon(b, false, "/coupons/nearby?lat=35.681&lon=139.767&radius_m=700")
}

// BenchmarkCouponNearbyMixed: 200 different points around the sample's
// areas, radius 2 km, limit 20, over the dense data set (about 1,000
// candidates each), from L0, as make bench's "coupon nearby mixed".
func BenchmarkCouponNearbyMixed(b *testing.B) {
	benchmarkCoupon(b, true, benchdata.Paths("/coupons", 200)...)
}
