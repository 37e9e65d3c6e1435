package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RateLimit is a route's rate_limit (SPEC §10), nginx limit_req.
type RateLimit struct {
	// Key is counted per value (a template). A key read from a client
	// header ($http_x_api_key) is the client's to choose: only its first
	// 256 bytes count.
	Key string `toml:"key"`
	// Rate is "N/s", "N/m" or "N/h" (nginx's "10r/s" also reads); ""
	// means no rate limit.
	Rate  string `toml:"rate"`
	Burst int    `toml:"burst"`
	// NoDelay admits the burst at once; without it requests above the
	// rate within the burst are delayed to the rate (nginx).
	NoDelay bool `toml:"nodelay"`
	// Mode: "local", "shared" or "exact".
	Mode string `toml:"mode"`
	// MaxKeys bounds the per-route key table.
	MaxKeys int `toml:"max_keys"`
}

// AuthRequest is a route's auth_request (SPEC §10).
type AuthRequest struct {
	Upstream    string   `toml:"upstream"`
	Path        string   `toml:"path"`
	CopyHeaders []string `toml:"copy_headers"`
	Timeout     Duration `toml:"timeout"`
}

// AuthCache keeps auth_request answers (2xx, 401, 403) per value of Key.
type AuthCache struct {
	Key        string   `toml:"key"`
	TTL        Duration `toml:"ttl"`
	MaxEntries int      `toml:"max_entries"`
}

// RateLimitExchange is [ratelimit]: how shared and exact modes use [redis].
type RateLimitExchange struct {
	// SyncInterval: how often shared mode exchanges counts through Redis.
	SyncInterval Duration `toml:"sync_interval"`
	// KeyPrefix starts every Redis key the rate limits write.
	KeyPrefix string `toml:"key_prefix"`
}

func DefaultRateLimit() RateLimit {
	return RateLimit{Key: "$remote_addr", Mode: "local", MaxKeys: 65536}
}

func DefaultAuthRequest() AuthRequest { return AuthRequest{Path: "/", Timeout: dur(time.Second)} }

func DefaultAuthCache() AuthCache { return AuthCache{TTL: dur(30 * time.Second), MaxEntries: 10000} }

func DefaultRateLimitExchange() RateLimitExchange {
	return RateLimitExchange{SyncInterval: dur(100 * time.Millisecond), KeyPrefix: "edgeproxy:rl:"}
}

// ParseRate reads "10/s", "10r/s", "600/m", "5/h".
func ParseRate(s string) (count int, period time.Duration, err error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	n = strings.TrimSuffix(n, "r")
	count, cerr := strconv.Atoi(n)
	switch unit {
	case "s":
		period = time.Second
	case "m":
		period = time.Minute
	case "h":
		period = time.Hour
	default:
		ok = false
	}
	if !ok || cerr != nil || count <= 0 || count > 1_000_000_000 {
		return 0, 0, fmt.Errorf("%q must be a rate like \"10/s\", \"600/m\" or \"5/h\"", s)
	}
	return count, period, nil
}

// UsesRateLimitMode reports whether any route has a rate limit in mode.
func (c *Config) UsesRateLimitMode(mode string) bool {
	for i := range c.Routes {
		if r := &c.Routes[i]; r.RateLimit.Rate != "" && r.RateLimit.Mode == mode {
			return true
		}
	}
	return false
}

// validateGuards checks a route's rate_limit, auth_request, auth_cache and
// limit_rate.
func (c *Config) validateGuards(p *problems, k string, r *Route) {
	rl := &r.RateLimit
	if rl.Rate != "" {
		if _, _, err := ParseRate(rl.Rate); err != nil {
			p.add(k+".rate_limit.rate", "%v", err)
		}
		if rl.Burst < 0 {
			p.add(k+".rate_limit.burst", "must not be negative")
		}
		switch rl.Mode {
		case "local", "shared", "exact":
		default:
			p.add(k+".rate_limit.mode", `must be "local", "shared" or "exact" (got %q)`, rl.Mode)
		}
		if rl.MaxKeys <= 0 {
			p.add(k+".rate_limit.max_keys", "must be positive")
		}
		if rl.Key == "" {
			p.add(k+".rate_limit.key", "must not be empty (default \"$remote_addr\")")
		}
		template(p, k+".rate_limit.key", rl.Key)
	}
	a := &r.AuthRequest
	if a.Upstream != "" {
		if _, ok := c.Upstreams[a.Upstream]; !ok {
			p.add(k+".auth_request.upstream", "names upstream %q, which is not defined in [upstreams]", a.Upstream)
		}
		if !strings.HasPrefix(a.Path, "/") {
			p.add(k+".auth_request.path", "must start with '/' (got %q)", a.Path)
		}
		if a.Timeout.Duration <= 0 {
			p.add(k+".auth_request.timeout", "must be a positive duration")
		}
		for j, h := range a.CopyHeaders {
			if !validToken.MatchString(h) {
				p.add(fmt.Sprintf("%s.auth_request.copy_headers[%d]", k, j), "%q is not a header name", h)
			}
		}
	} else if len(a.CopyHeaders) > 0 {
		p.add(k+".auth_request.upstream", "is required")
	}
	ac := &r.AuthCache
	if ac.Key != "" {
		if a.Upstream == "" {
			p.add(k+".auth_cache", "needs auth_request")
		}
		template(p, k+".auth_cache.key", ac.Key)
		if ac.TTL.Duration <= 0 {
			p.add(k+".auth_cache.ttl", "must be a positive duration")
		}
		if ac.MaxEntries <= 0 {
			p.add(k+".auth_cache.max_entries", "must be positive")
		}
	}
	if r.LimitRate != "" {
		if n, err := ParseSize(r.LimitRate); err != nil {
			p.add(k+".limit_rate", "%v", err)
		} else if n <= 0 {
			p.add(k+".limit_rate", "must be positive (\"\" for none)")
		}
	}
}

func (c *Config) validateRateLimitExchange(p *problems) {
	if c.RateLimit.SyncInterval.Duration <= 0 {
		p.add("ratelimit.sync_interval", "must be a positive duration")
	}
}
