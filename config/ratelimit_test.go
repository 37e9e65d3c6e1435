package config

import (
	"testing"
	"time"
)

func TestGuardKeysAreValidated(t *testing.T) {
	tests := []struct {
		name, toml string
		want       []string
	}{
		{"bad rate", routeBase + "upstream = \"a\"\nrate_limit = { rate = \"10 per second\" }\n",
			[]string{"f.toml:7:1: routes[0].rate_limit.rate", "like \"10/s\""}},
		{"bad mode and burst", routeBase + "upstream = \"a\"\nrate_limit = { rate = \"10/s\", mode = \"global\", burst = -1 }\n",
			[]string{"routes[0].rate_limit.mode", "routes[0].rate_limit.burst"}},
		{"bad key", routeBase + "upstream = \"a\"\nrate_limit = { rate = \"10/s\", key = \"$remote_adr\" }\n",
			[]string{"routes[0].rate_limit.key: unknown variable"}},
		{"auth upstream", routeBase + "upstream = \"a\"\nauth_request = { upstream = \"nope\", path = \"verify\" }\n",
			[]string{"routes[0].auth_request.upstream: names upstream \"nope\"", "routes[0].auth_request.path: must start with '/'"}},
		{"auth cache without auth", routeBase + "upstream = \"a\"\nauth_cache = { key = \"$http_authorization\" }\n",
			[]string{"routes[0].auth_cache: needs auth_request"}},
		{"limit_rate", routeBase + "upstream = \"a\"\nlimit_rate = \"fast\"\n",
			[]string{"f.toml:7:1: routes[0].limit_rate"}},
		{"sync interval", "[ratelimit]\nsync_interval = \"0s\"\n",
			[]string{"ratelimit.sync_interval"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantParseErrors(t, tc.toml, tc.want) })
	}
}

func TestGuardKeysDefaults(t *testing.T) {
	cfg, err := Parse("f.toml", []byte(routeBase+`upstream = "a"
rate_limit = { rate = "10r/s", burst = 20 }
auth_request = { upstream = "a", path = "/verify", copy_headers = ["X-User"] }
auth_cache = { key = "$http_authorization" }
limit_rate = "1MiB"
`))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Routes[0]
	if r.RateLimit != (RateLimit{Key: "$remote_addr", Rate: "10r/s", Burst: 20, Mode: "local", MaxKeys: 65536}) {
		t.Errorf("rate_limit: %+v", r.RateLimit)
	}
	if r.AuthRequest.Timeout.Duration != time.Second || r.AuthCache.TTL.Duration != 30*time.Second || r.AuthCache.MaxEntries != 10000 {
		t.Errorf("auth: %+v %+v", r.AuthRequest, r.AuthCache)
	}
	if n, p, _ := ParseRate(r.RateLimit.Rate); n != 10 || p != time.Second {
		t.Errorf("rate %d per %v", n, p)
	}
	if cfg.RateLimit.SyncInterval.Duration != 100*time.Millisecond || cfg.RateLimit.KeyPrefix != "edgeproxy:rl:" {
		t.Errorf("[ratelimit]: %+v", cfg.RateLimit)
	}
	if cfg.Routes[0].LimitRate != "1MiB" {
		t.Errorf("limit_rate %q", cfg.Routes[0].LimitRate)
	}
}
