package config

import (
	"strings"
	"testing"
	"time"
)

func TestRouteCacheDefaultsAndKeys(t *testing.T) {
	cfg, err := Parse("f.toml", []byte(routeBase+`upstream = "a"
cache = { enabled = true, max_age = "30s", bypass = ["$http_x_nocache"] }
`))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Routes[0].Cache
	if !c.Enabled || c.Key != "$scheme$host$request_uri" || !c.Lock || c.MaxBody != 1<<20 || c.MaxAge.Duration != 30*time.Second || len(c.Bypass) != 1 {
		t.Fatalf("defaults lost under a partial table: %+v", c)
	}
	if cfg.Cache.ResponseShare != 0.25 || cfg.ResponseCacheBytes() != 64<<20 {
		t.Fatalf("share %g bytes %d", cfg.Cache.ResponseShare, cfg.ResponseCacheBytes())
	}
}

func TestRouteCacheValidated(t *testing.T) {
	tests := []struct{ name, toml, want string }{
		{"unknown variable in key", routeBase + "upstream = \"a\"\ncache = { enabled = true, key = \"$hots\" }\n", "routes[0].cache.key: unknown variable $hots"},
		{"bad bypass", routeBase + "upstream = \"a\"\ncache = { enabled = true, bypass = [\"$nope\"] }\n", "routes[0].cache.bypass[0]"},
		{"negative window", routeBase + "upstream = \"a\"\ncache = { enabled = true, stale_if_error = \"-1s\" }\n", "routes[0].cache.stale_if_error: must not be negative"},
		{"body too large for the share", routeBase + "upstream = \"a\"\ncache = { enabled = true, max_body = \"32MiB\" }\n", "routes[0].cache.max_body: must be at most a quarter"},
		{"not an upstream route", routeBase + "return = 200\ncache = { enabled = true }\n", "routes[0].cache.enabled: caches upstream answers"},
		{"unknown key", routeBase + "upstream = \"a\"\ncache = { enabled = true, ttl = \"1s\" }\n", "ttl"},
		{"share", "[cache]\nresponse_share = 1.5\n", "cache.response_share: must be in 0..0.9"},
		{"no share left", "[cache]\nresponse_share = 0.0\n" + routeBase + "upstream = \"a\"\ncache = { enabled = true }\n", "routes[0].cache.enabled: needs a response cache"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.toml", []byte(tc.toml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
		})
	}
}
