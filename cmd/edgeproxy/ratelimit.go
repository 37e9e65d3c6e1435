package main

import (
	"go.uber.org/zap"

	"github.com/edgeproxy/edgeproxy/config"
	"github.com/edgeproxy/edgeproxy/proxy"
	"github.com/edgeproxy/edgeproxy/ratelimit"
)

// rateLimitOptions are the Redis limiters' options: [redis] for the
// connection, [ratelimit] for the exchange.
func rateLimitOptions(c *config.Config, log *zap.Logger) ratelimit.Options {
	return ratelimit.Options{
		Addrs:          append([]string(nil), c.Redis.Addrs...),
		Username:       c.Redis.Username,
		Password:       c.Redis.Password,
		DB:             c.Redis.DB,
		DialTimeout:    c.Redis.DialTimeout.Duration,
		CommandTimeout: c.Redis.CommandTimeout.Duration,
		SyncInterval:   c.RateLimit.SyncInterval.Duration,
		KeyPrefix:      c.RateLimit.KeyPrefix,
		Logger:         log,
	}
}

// guardOptions sets a route's rate_limit, auth_request and limit_rate
// (SPEC §10); the config was validated.
func guardOptions(ro *proxy.RouteOptions, r *config.Route) {
	if rl := r.RateLimit; rl.Rate != "" {
		count, period, _ := config.ParseRate(rl.Rate)
		ro.RateLimit = &proxy.RateLimitOptions{Key: rl.Key, Count: count, Period: period, Burst: rl.Burst,
			NoDelay: rl.NoDelay, Mode: rl.Mode, MaxKeys: rl.MaxKeys}
	}
	if a := r.AuthRequest; a.Upstream != "" {
		ro.AuthRequest = &proxy.AuthRequestOptions{Upstream: a.Upstream, Path: a.Path,
			CopyHeaders: append([]string(nil), a.CopyHeaders...), Timeout: a.Timeout.Duration}
		if c := r.AuthCache; c.Key != "" {
			ro.AuthRequest.CacheKey, ro.AuthRequest.CacheTTL, ro.AuthRequest.CacheMaxEntries = c.Key, c.TTL.Duration, c.MaxEntries
		}
	}
	if r.LimitRate != "" {
		ro.LimitRate, _ = config.ParseSize(r.LimitRate)
	}
}
