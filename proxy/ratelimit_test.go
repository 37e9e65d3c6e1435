package proxy

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

func TestRateLimitAnswers429WithRateLimitHeaders(t *testing.T) {
	addr := routeProxy(t, "", RouteOptions{Name: "api", PathPrefix: "/", Return: 200, Body: "ok",
		RateLimit: &RateLimitOptions{Key: "$http_x_client", Count: 1, Period: time.Hour, Burst: 2, NoDelay: true}})
	for i := 0; i < 3; i++ {
		if resp, _ := get(t, "http://"+addr+"/", "X-Client", "a"); resp.StatusCode != 200 {
			t.Fatalf("request %d within burst 2 (+1): status %d", i, resp.StatusCode)
		}
	}
	resp, body := get(t, "http://"+addr+"/", "X-Client", "a")
	if resp.StatusCode != 429 || !strings.Contains(body, "too many requests") {
		t.Fatalf("4th request: %d %q, want 429", resp.StatusCode, body)
	}
	// 1/h, 3 used: the next is admitted in one hour.
	if got := resp.Header.Get("Retry-After"); got != "3600" {
		t.Errorf("Retry-After = %q, want 3600", got)
	}
	if got := resp.Header.Get("RateLimit-Policy"); got != `"default";q=1;w=3600` {
		t.Errorf("RateLimit-Policy = %q", got)
	}
	if got := resp.Header.Get("RateLimit"); got != `"default";r=0;t=3600` {
		t.Errorf("RateLimit = %q", got)
	}
	if resp, _ := get(t, "http://"+addr+"/", "X-Client", "b"); resp.StatusCode != 200 {
		t.Fatalf("another key: status %d, want 200", resp.StatusCode)
	}
}

// nginx limit_req without nodelay: requests within the burst are not
// refused but delayed to the rate.
func TestRateLimitWithoutNodelayDelaysToTheRate(t *testing.T) {
	addr := routeProxy(t, "", RouteOptions{PathPrefix: "/", Return: 200,
		RateLimit: &RateLimitOptions{Key: "$remote_addr", Count: 20, Period: time.Second, Burst: 10}})
	start := time.Now()
	for i := 0; i < 6; i++ {
		if resp, _ := get(t, "http://"+addr+"/"); resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d, want 200 (delayed, not refused)", i, resp.StatusCode)
		}
	}
	// 6 requests at 20/s: the last goes out 5 intervals (250ms) after the first.
	if el := time.Since(start); el < 240*time.Millisecond {
		t.Fatalf("6 requests took %v; without nodelay they are paced at 20/s (≥250ms)", el)
	}
}

// A key from a client header counts only its first MaxRateKeyBytes bytes:
// a client cannot make the proxy hash megabytes, and longer values that
// share them share a budget.
func TestRateLimitKeyIsBoundedInLength(t *testing.T) {
	addr := routeProxy(t, "", RouteOptions{PathPrefix: "/", Return: 200,
		RateLimit: &RateLimitOptions{Key: "$http_x_api_key", Count: 1, Period: time.Hour, NoDelay: true}})
	long := strings.Repeat("k", MaxRateKeyBytes)
	if resp, _ := get(t, "http://"+addr+"/", "X-Api-Key", long+"first"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp, _ := get(t, "http://"+addr+"/", "X-Api-Key", long+"second"); resp.StatusCode != 429 {
		t.Fatalf("same first %d bytes: status %d, want 429", MaxRateKeyBytes, resp.StatusCode)
	}
}

// The limiter survives a reload with the same rate_limit: a SIGHUP hands
// nobody a fresh burst.
func TestRateLimitKeptAcrossReload(t *testing.T) {
	o := testOptions()
	o.Routes = []RouteOptions{{Name: "r", PathPrefix: "/", Return: 200,
		RateLimit: &RateLimitOptions{Key: "$remote_addr", Count: 1, Period: time.Hour, NoDelay: true}}}
	addr, s := startProxy(t, o)
	get(t, "http://"+addr+"/")
	if err := s.Reload(o); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, "http://"+addr+"/"); resp.StatusCode != 429 {
		t.Fatalf("after reload: %d, want 429", resp.StatusCode)
	}
	snap := s.Snapshot()
	if r := snap.Routes[0]; r.Limited != 1 || !strings.Contains(r.RateLimit, "local") {
		t.Fatalf("status: %+v", r)
	}
}

// A limited route allocates no more per request than a plain one.
func TestRateLimitStepAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	var base float64
	for i, ro := range []RouteOptions{{PathPrefix: "/", Upstream: "up"}, limitedRoute} {
		serve, stop := routeHarness(t, ro)
		for j := 0; j < 100; j++ {
			serve()
		}
		allocs := testing.AllocsPerRun(1000, serve)
		stop()
		if i == 0 {
			base = allocs
		} else if allocs > base {
			t.Fatalf("rate-limited route: %.1f allocs per request, plain %.1f", allocs, base)
		}
	}
}

// limitedRoute never limits (the rate is far above the benchmark's), so
// it measures the cost of deciding.
var limitedRoute = RouteOptions{PathPrefix: "/", Upstream: "up",
	RateLimit: &RateLimitOptions{Key: "$remote_addr", Count: 1_000_000_000, Period: time.Second, Burst: 1000, NoDelay: true}}

// BenchmarkForwardingPathRateLimited is BenchmarkForwardingPath with a
// local rate_limit: the step's whole cost per request.
func BenchmarkForwardingPathRateLimited(b *testing.B) {
	serve, stop := routeHarness(b, limitedRoute)
	defer stop()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		serve()
	}
}

func BenchmarkRateLimitStep(b *testing.B) {
	for _, keys := range []int{1, 100000} {
		b.Run(strconv.Itoa(keys)+"keys", func(b *testing.B) {
			lim := NewLocalRateLimiter(RateLimitOptions{Count: 1_000_000_000, Period: time.Second, Burst: 10, MaxKeys: 65536})
			key := []byte("203.0.113.000000")
			now := time.Now()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				k := i % keys
				key[len(key)-1] = byte(k)
				key[len(key)-2] = byte(k >> 8)
				key[len(key)-3] = byte(k >> 16)
				lim.Take(key, now)
			}
		})
	}
}

// 429s and auth outcomes are counted per route (and mode, outcome).
func TestRateLimitAndAuthMetrics(t *testing.T) {
	_, authAddr := startAuthService(t)
	o := testOptions()
	o.Metrics = NewMetrics(prometheus.NewRegistry())
	auth := testUpstreamOptions(authAddr)
	o.Upstreams["auth"] = auth
	o.Routes = []RouteOptions{{Name: "api", PathPrefix: "/", Return: 200,
		AuthRequest: &AuthRequestOptions{Upstream: "auth", Path: "/verify", Timeout: time.Second},
		RateLimit:   &RateLimitOptions{Key: "$remote_addr", Count: 1, Period: time.Hour, NoDelay: true}}}
	addr, _ := startProxy(t, o)
	get(t, "http://"+addr+"/", "X-Mode", "allow")
	get(t, "http://"+addr+"/", "X-Mode", "allow")
	get(t, "http://"+addr+"/", "X-Mode", "deny")
	if got := counterValue(o.Metrics.rateLimited.WithLabelValues("api", "local")); got != 1 {
		t.Errorf("limited = %v, want 1", got)
	}
	if got := counterValue(o.Metrics.authOutcomes.WithLabelValues("api", "allow")); got != 2 {
		t.Errorf("auth allow = %v, want 2", got)
	}
	if got := counterValue(o.Metrics.authOutcomes.WithLabelValues("api", "deny")); got != 1 {
		t.Errorf("auth deny = %v, want 1", got)
	}
}
