package coupon

import (
	"math"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgeproxy/edgeproxy/internal/benchdata"
)

var (
	denseOnce  sync.Once
	denseStore *FileStore
)

// dense is the mixed benchmark's data set (internal/benchdata) in a
// memory store at the default precision.
func dense(tb testing.TB) *FileStore {
	denseOnce.Do(func() {
		m := map[string]Coupon{}
		for _, line := range benchdata.Dense() {
			c, err := Parse(line)
			if err != nil {
				panic(err)
			}
			m[c.ID] = c
		}
		denseStore = NewMemoryStore(m, 5)
	})
	return denseStore
}

var benchNow = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func benchHandlerOf(store Store) *Handler {
	return NewHandler(store, Options{PathPrefix: "/coupons", Precision: 5, Now: func() time.Time { return benchNow },
		Limits: Limits{DefaultRadiusM: 2000, MaxRadiusM: 20000, DefaultLimit: 20, MaxLimit: 100}})
}

// mixedProfile is what the mixed queries cost in work, averaged: cells
// read, coupons the search scanned, candidates within the radius, and
// bytes answered.
func mixedProfile(store *FileStore, paths []string) (cells, scanned, cands, bytes float64) {
	h := benchHandlerOf(store)
	for _, p := range paths {
		var args fasthttp.Args
		args.Parse(p[len("/coupons/nearby?"):])
		q, _ := ParseNearby(&args, h.opts.Load().Limits)
		s := &search{}
		s.run(store, q, 5, benchNow.UnixNano())
		scanned += float64(s.scanned)
		hashes := s.hashes
		box := BoxAround(q.Lat, q.Lon, q.RadiusM)
		for i := 0; i+5 <= len(hashes); i += 5 {
			ix, ok := store.cells[string(hashes[i:i+5])]
			if !ok {
				continue
			}
			cells++
			lo := sort.SearchFloat64s(ix.lat, box.LatMin)
			hi := sort.SearchFloat64s(ix.lat, math.Nextafter(box.LatMax, math.Inf(1)))
			for j := lo; j < hi; j++ {
				if c := ix.Coupon(j); c.ValidAt(s.now) && DistanceM(q.Lat, q.Lon, c.Lat, c.Lon) <= q.RadiusM {
					cands++
				}
			}
		}
		_, _, body := serve(h.Serve, "GET", p)
		bytes += float64(len(body))
	}
	n := float64(len(paths))
	return cells / n, scanned / n, cands / n, bytes / n
}

// BenchmarkNearbyMixed: 200 different points around the sample's areas,
// radius 2 km, limit 20, over the dense data set (about 1,000 candidates
// a search), from memory: the search alone, as make bench's "coupon nearby
// mixed" runs it.
func BenchmarkNearbyMixed(b *testing.B) {
	store := dense(b)
	paths := benchdata.Paths("/coupons", 200)
	cells, scanned, cands, bytes := mixedProfile(store, paths)
	h := benchHandlerOf(store)
	ctxs := make([]fasthttp.RequestCtx, len(paths))
	reqs := make([]fasthttp.Request, len(paths))
	for i, p := range paths {
		reqs[i].SetRequestURI(p)
		reqs[i].Header.SetHost("edge.test")
		ctxs[i].Init(&reqs[i], &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, nil)
	}
	for i := range ctxs { // warm the pools and the response buffers
		h.Serve(&ctxs[i])
		ctxs[i].Response.ResetBody()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctx := &ctxs[i%len(ctxs)]
		h.Serve(ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatal(ctx.Response.StatusCode())
		}
		ctx.Response.ResetBody()
	}
	b.ReportMetric(cells, "cells/op")
	b.ReportMetric(scanned, "scanned/op")
	b.ReportMetric(cands, "candidates/op")
	b.ReportMetric(bytes, "B-answer/op")
}
