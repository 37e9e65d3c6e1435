package main

import (
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/config"
	"github.com/edgeproxy/edgeproxy/proxy"
)

func TestGuardOptionsFromConfig(t *testing.T) {
	cfg, err := config.Parse("f.toml", []byte(`
[upstreams.app]
servers = ["127.0.0.1:1"]
[upstreams.auth]
servers = ["127.0.0.1:2"]
[[routes]]
path_prefix = "/"
upstream = "app"
rate_limit = { key = "$http_x_api_key", rate = "600/m", burst = 5, nodelay = true, mode = "shared" }
auth_request = { upstream = "auth", path = "/verify", copy_headers = ["X-User"], timeout = "250ms" }
auth_cache = { key = "$http_authorization", ttl = "10s", max_entries = 50 }
limit_rate = "1MiB"
[ratelimit]
sync_interval = "50ms"
`))
	if err != nil {
		t.Fatal(err)
	}
	ro := routeOptions(&cfg.Routes[0])
	if *ro.RateLimit != (proxy.RateLimitOptions{Key: "$http_x_api_key", Count: 600, Period: time.Minute, Burst: 5, NoDelay: true, Mode: "shared", MaxKeys: 65536}) {
		t.Errorf("rate limit: %+v", *ro.RateLimit)
	}
	a := ro.AuthRequest
	if a.Upstream != "auth" || a.Path != "/verify" || a.Timeout != 250*time.Millisecond || a.CacheKey != "$http_authorization" ||
		a.CacheTTL != 10*time.Second || a.CacheMaxEntries != 50 || len(a.CopyHeaders) != 1 {
		t.Errorf("auth: %+v", *a)
	}
	if ro.LimitRate != 1<<20 {
		t.Errorf("limit_rate %d", ro.LimitRate)
	}
	if o := rateLimitOptions(cfg, nil); o.SyncInterval != 50*time.Millisecond || o.KeyPrefix != "edgeproxy:rl:" {
		t.Errorf("ratelimit options: %+v", o)
	}
	// A route without them has none.
	plain := routeOptions(&config.Route{Upstream: "app"})
	if plain.RateLimit != nil || plain.AuthRequest != nil || plain.LimitRate != 0 {
		t.Errorf("plain route: %+v %+v %d", plain.RateLimit, plain.AuthRequest, plain.LimitRate)
	}
}
