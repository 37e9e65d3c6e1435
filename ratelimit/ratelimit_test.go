package ratelimit_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgeproxy/edgeproxy/internal/redistest"
	"github.com/edgeproxy/edgeproxy/proxy"
	"github.com/edgeproxy/edgeproxy/ratelimit"
)

// instance is one in-process edgeproxy with one rate-limited route.
type instance struct {
	addr string
	srv  *proxy.Server
}

func startInstance(t testing.TB, redisAddr string, rl proxy.RateLimitOptions, sync time.Duration) *instance {
	t.Helper()
	lims := ratelimit.New(ratelimit.Options{Addrs: []string{redisAddr}, SyncInterval: sync, CommandTimeout: 100 * time.Millisecond,
		DialTimeout: 200 * time.Millisecond, KeyPrefix: "rl:"})
	t.Cleanup(lims.Close)
	s, err := proxy.New(proxy.Options{
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second,
		MaxHeaderBytes: 16 << 10, MaxConns: 1000, MaxBodyBytes: 1 << 20, BufferBodyBytes: 64 << 10,
		RateLimiters: lims,
		Routes:       []proxy.RouteOptions{{Name: "api", PathPrefix: "/", Return: 200, Body: "ok", RateLimit: &rl}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-done
	})
	return &instance{addr: ln.Addr().String(), srv: s}
}

var client = &fasthttp.Client{MaxConnsPerHost: 64, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}

func hit(t testing.TB, addr, key string) int {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + "/")
	req.Header.Set("X-Key", key)
	if err := client.Do(req, resp); err != nil {
		t.Errorf("request: %v", err)
		return 0
	}
	return resp.StatusCode()
}

// TestSharedAggregateBound: three instances with uneven load (60%, 30%,
// 10% of 3× the rate) on one key admit, together, no more than the bound
// of doc.go and not much less than the rate.
func TestSharedAggregateBound(t *testing.T) {
	rds := redistest.Start(t)
	const (
		rate  = 100 // per second
		burst = 5
		span  = 3 * time.Second
		n     = 3
	)
	syncEvery := 50 * time.Millisecond
	rl := proxy.RateLimitOptions{Key: "$http_x_key", Count: rate, Period: time.Second, Burst: burst, NoDelay: true, Mode: "shared"}
	var insts []*instance
	for i := 0; i < n; i++ {
		insts = append(insts, startInstance(t, rds.Addr, rl, syncEvery))
	}
	offered := []int{180, 90, 30} // per second: 3× the rate, uneven
	var admitted [n]atomic.Int64
	var other atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i, in := range insts {
		const workers = 3
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(i, w int, in *instance) {
				defer wg.Done()
				every := time.Second * workers / time.Duration(offered[i])
				for k := 0; ; k++ {
					at := start.Add(time.Duration(w)*every/workers + time.Duration(k)*every)
					if at.Sub(start) >= span {
						return
					}
					time.Sleep(time.Until(at))
					switch hit(t, in.addr, "tenant-1") {
					case 200:
						admitted[i].Add(1)
					case 429:
					default:
						other.Add(1)
					}
				}
			}(i, w, in)
		}
	}
	wg.Wait()
	total := admitted[0].Load() + admitted[1].Load() + admitted[2].Load()
	bound := rate*span.Seconds() + (burst + 1) + (n-1)*(2*syncEvery.Seconds()*rate+burst+1)
	t.Logf("shared, %d instances, offered %v/s, rate %d/s burst %d, sync %v, %v: admitted %d (%d, %d, %d); bound %.0f; rate·span %.0f",
		n, offered, rate, burst, syncEvery, span, total, admitted[0].Load(), admitted[1].Load(), admitted[2].Load(), bound, rate*span.Seconds())
	if other.Load() != 0 {
		t.Fatalf("%d answers neither 200 nor 429", other.Load())
	}
	if float64(total) > bound {
		t.Fatalf("admitted %d > bound %.0f", total, bound)
	}
	if float64(total) < 0.8*rate*span.Seconds() {
		t.Fatalf("admitted %d: well under the rate (%v)", total, rate*span.Seconds())
	}
}

// exact: two instances share one budget exactly.
func TestExactSharesOneBudget(t *testing.T) {
	rds := redistest.Start(t)
	rl := proxy.RateLimitOptions{Key: "$http_x_key", Count: 1, Period: time.Hour, Burst: 4, NoDelay: true, Mode: "exact"}
	a, b := startInstance(t, rds.Addr, rl, time.Second), startInstance(t, rds.Addr, rl, time.Second)
	ok := 0
	for i := 0; i < 10; i++ {
		in := a
		if i%2 == 1 {
			in = b
		}
		if hit(t, in.addr, "k") == 200 {
			ok++
		}
	}
	if ok != 5 {
		t.Fatalf("admitted %d across two instances, want 5 (burst 4 + 1)", ok)
	}
}

// With Redis gone, shared and exact decide locally: never a 500, and
// the fallbacks are counted.
func TestRedisDownFallsBackToLocal(t *testing.T) {
	for _, mode := range []string{"shared", "exact"} {
		t.Run(mode, func(t *testing.T) {
			rds := redistest.Start(t)
			rl := proxy.RateLimitOptions{Key: "$http_x_key", Count: 1000, Period: time.Second, Burst: 10, NoDelay: true, Mode: mode}
			in := startInstance(t, rds.Addr, rl, 20*time.Millisecond)
			if st := hit(t, in.addr, "k"); st != 200 {
				t.Fatalf("redis up: %d", st)
			}
			rds.Stop()
			deadline := time.Now().Add(5 * time.Second)
			for in.srv.Snapshot().Routes[0].RateFallbacks == 0 {
				if time.Now().After(deadline) {
					t.Fatal("no fallback counted with redis down")
				}
				if st := hit(t, in.addr, "k"); st != 200 && st != 429 {
					t.Fatalf("redis down: %d", st)
				}
				time.Sleep(10 * time.Millisecond)
			}
			for i := 0; i < 20; i++ {
				if st := hit(t, in.addr, "k"+strconv.Itoa(i)); st != 200 {
					t.Fatalf("redis down, fresh key: %d, want 200 from the local table", st)
				}
			}
		})
	}
}

// Step-level cost of one decision per mode; exact includes its Redis
// round trip.
func BenchmarkTake(b *testing.B) {
	rds := redistest.Start(b)
	key := []byte("203.0.113.9")
	for _, mode := range []string{"local", "shared", "exact"} {
		b.Run(mode, func(b *testing.B) {
			o := proxy.RateLimitOptions{Count: 1_000_000_000, Period: time.Second, Burst: 1_000_000_000, NoDelay: true, Mode: mode}
			var lim proxy.RateLimiter
			if mode == "local" {
				lim = proxy.NewLocalRateLimiter(o)
			} else {
				ls := ratelimit.New(ratelimit.Options{Addrs: []string{rds.Addr}, SyncInterval: 100 * time.Millisecond})
				defer ls.Close()
				var err error
				if lim, err = ls.NewRateLimiter("bench", o); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if !lim.Take(key, time.Now()).Allowed {
					b.Fatal("limited")
				}
			}
		})
	}
}

// BenchmarkHandler is the proxy's whole handler for a fixed-answer route
// (no upstream round trip to drown the difference) without a rate limit
// and with one per mode: the CPU a limited route adds per request.
func BenchmarkHandler(b *testing.B) {
	rds := redistest.Start(b)
	for _, mode := range []string{"none", "local", "shared", "exact"} {
		b.Run(mode, func(b *testing.B) {
			ro := proxy.RouteOptions{Name: "api", PathPrefix: "/", Return: 200, Body: "ok"}
			if mode != "none" {
				ro.RateLimit = &proxy.RateLimitOptions{Key: "$remote_addr", Count: 1_000_000_000, Period: time.Second,
					Burst: 1_000_000_000, NoDelay: true, Mode: mode}
			}
			lims := ratelimit.New(ratelimit.Options{Addrs: []string{rds.Addr}, SyncInterval: 100 * time.Millisecond})
			defer lims.Close()
			s, err := proxy.New(proxy.Options{MaxHeaderBytes: 16 << 10, MaxConns: 1000, MaxBodyBytes: 1 << 20,
				BufferBodyBytes: 64 << 10, RateLimiters: lims, Routes: []proxy.RouteOptions{ro}})
			if err != nil {
				b.Fatal(err)
			}
			h := s.Handler()
			var ctx fasthttp.RequestCtx
			var req fasthttp.Request
			req.SetRequestURI("/x")
			req.Header.SetHost("edge.test")
			ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, nil)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h(&ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatalf("status %d", ctx.Response.StatusCode())
				}
				ctx.Response.Reset()
			}
		})
	}
}
